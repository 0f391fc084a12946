"""Signal ops: DFT, STFT, window functions, mel filter banks."""
