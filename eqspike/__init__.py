"""eqspike: emulation layer for neuromorphic hardware that learns by spiking equilibrium propagation."""

__version__ = "0.1.0"
