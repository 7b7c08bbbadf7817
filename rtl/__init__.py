"""Amaranth RTL of the spiking EqProp network, bit-exact with golden_model.fixed_model.

Modules: ``arith`` (rounding/overflow rules), ``neuron`` (datapaths), ``bus`` (AER spike
streams), ``layer`` (layer cores), ``network`` (top, host interface, cycle formulas),
``verilog`` (generation). See docs/architecture.md.
"""
