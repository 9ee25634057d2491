"""The neural network playground's server: specs, data, training engine, stream and web API."""

__version__ = "0.1.0"
