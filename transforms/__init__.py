"""CCM claims pipeline: one module per stage, each stage one function."""
