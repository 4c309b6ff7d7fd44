"""Pure key mappings between checkpoint layouts: state dict in, state dict out, no models."""
