"""The ``k5`` command line: one module per subcommand, each with ``add_parser(subparsers)`` and ``run(args)``."""
