"""``eqspike verify``: a constrained-random co-simulation campaign (docs/cosim.md, "Campaign").

Modules: :mod:`.design` (random designs, their folder format), :mod:`.coverage` (functional
coverage bins from the golden model's trace and the testbench's observations), :mod:`.planted`
(planted RTL bugs, injected while the Verilog is generated), :mod:`.run` (build and run one
design in Verilator), :mod:`.shrink` (smallest failing design, replay folder) and
:mod:`.campaign` (the loop, summary and JSON).
"""
