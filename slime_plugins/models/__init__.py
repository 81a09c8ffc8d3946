"""Layer specs of model families, one module each."""
