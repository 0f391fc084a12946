"""Control flow: If, Loop, Scan. Bodies are nested graphs that may read the enclosing scopes."""
