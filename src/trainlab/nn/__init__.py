"""Model definitions (torch.nn modules)."""
