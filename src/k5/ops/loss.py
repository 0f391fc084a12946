"""Loss ops: negative log-likelihood, softmax cross-entropy."""
