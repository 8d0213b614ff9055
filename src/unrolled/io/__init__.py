"""Reading and writing models: atomic saves, the native ``.npz`` format."""
