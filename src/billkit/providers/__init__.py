"""One adapter per provider; each folder holds that provider's whole story."""
