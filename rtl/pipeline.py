"""The update pipeline of a core, planned from the config: which stage runs which operation of
the neuron datapath, which values each stage register holds, and in which stage each
per-neuron memory is read and written.

An operation (:data:`LAYER_OPS`, :data:`INPUT_OPS`) names the values it uses and the values
it makes. A plan (:func:`layer_plan`, :func:`input_plan`) lists the operations of stages
``1 .. K - 1`` (stage 0 presents the group's address; stage ``K`` writes the last state group
and offers the spikes). ``cfg.mul_stages`` sets how many stages each multiply spans:

- 1: operand, product and rounding in one stage (one multiplier chain per stage);
- 2: the product is registered (the DSP block's output goes to a flip-flop first);
- 3: the operand is registered too (the DSP block's inputs come from flip-flops).

Every value lives in the stage registers from the stage after the one that makes it up to
its last use (:meth:`Plan.live`): ``p_k`` is the register stage ``k`` reads. A memory's old
word is read with the address of stage ``r - 1`` and used straight from the port in stage
``r``, the first stage that uses any of its fields (:meth:`Plan.read_stage`); a state group
is written in the stage after the one that makes its last field (:meth:`Plan.write_stage`).
The integers never change with the plan, only the cycles: ``K + 1`` per pass on top of the
groups (:func:`rtl.network.update_cycles`).
"""

from __future__ import annotations

from dataclasses import dataclass

from golden_model.config import EqSpikeConfig

__all__ = ["LAYER_OPS", "INPUT_OPS", "LAYER_READS", "INPUT_READS", "Plan", "layer_plan", "input_plan",
           "update_stages", "input_stages"]


def _encoder_ops(s: str, rho: str, prefix: str = "enc") -> dict:
    return {
        f"{prefix}_op": ((s, rho), ("da",)),
        f"{prefix}_mul": (("da",), ("pa",)),
        f"{prefix}_fin": ((rho, "pa"), ("a", "ovf_a")),
    }


#: Operations of a non-input core: name -> (values used, values made).
LAYER_OPS = {
    "acc": ((), ("acc",)),                                   # the group's accumulator lanes
    "dec_op": (("acc", "v_old"), ("dv",)),                   # rtl.neuron.decode_operand
    "dec_mul": (("dv",), ("pv",)),                           # lam * dv
    "dec_fin": (("v_old", "pv"), ("v", "ovf_v")),            # rtl.neuron.decode_finish
    "nudge_op": (("y", "s_old"), ("dy",)),                   # output layer: y - s
    "nudge_mul": (("dy",), ("term",)),                       # beta2_code * dy
    "nudge_sign": (("term",), ("nudged",)),                  # rtl.neuron.nudge_signed
    "input": (("v", "b"), ("x", "ovf_x")),                   # rtl.neuron.input_sum (+ nudged)
    "st_op": (("x", "s_old"), ("ds",)),                      # rtl.neuron.state_operand
    "st_mul": (("ds",), ("ps",)),                            # eps * ds
    "st_fin": (("s_old", "ps"), ("s",)),                     # rtl.neuron.state_finish
    **_encoder_ops("s", "s_old"),                            # rho_last is the old s
    "sigma": (("a", "phi_old", "ovf_v", "ovf_x", "ovf_a"), ("phi", "q", "ovf")),
}
#: Operations of the input core (its s is the clamped input).
INPUT_OPS = {
    **_encoder_ops("s", "rho_old"),
    "sigma": (("a", "phi_old", "ovf_a"), ("phi", "q", "ovf")),
}
#: Values read from a memory: value -> memory (the port's word holds them all).
LAYER_READS = {"v_old": "state_vs", "s_old": "state_vs", "b": "bias", "y": "target", "phi_old": "state_xap"}
INPUT_READS = {"s": "inputs", "rho_old": "state", "phi_old": "state"}


def _chain(name: str, P: int) -> list:
    """The stages of one multiply chain ``name_op -> name_mul -> name_fin`` at ``P`` stages."""
    ops = [f"{name}_op", f"{name}_mul", f"{name}_fin"]
    return {1: [ops], 2: [ops[:2], ops[2:]], 3: [[o] for o in ops]}[P]


@dataclass(frozen=True)
class Plan:
    """Stages ``1 .. K - 1`` as lists of operation names, run in order within a stage (a value
    made earlier in the stage feeds a later operation directly); ``ops`` the operation table,
    ``reads`` the memory values, ``labels`` what each stage does (docs, reports)."""
    stages: tuple
    ops: dict
    reads: dict

    @property
    def K(self) -> int:
        """Stages after stage 0; the last one writes and offers the spikes."""
        return len(self.stages) + 1

    def uses(self, op: str) -> tuple:
        used = self.ops[op][0]
        return used + ("nudged",) if (op == "input" and "nudge_sign" in self.all_ops) else used

    @property
    def all_ops(self) -> tuple:
        return tuple(op for st in self.stages for op in st)

    def op_stage(self, op: str) -> int:
        return next(k for k, st in enumerate(self.stages, 1) if op in st)

    def made_in(self, value: str) -> int:
        """The stage that makes ``value`` (a memory value: the stage that reads it)."""
        if value in self.reads:
            return self.read_stage(self.reads[value])
        return next(k for k, st in enumerate(self.stages, 1) for op in st if value in self.ops[op][1])

    def read_stage(self, memory: str) -> int:
        """The first stage that uses a value of ``memory`` (its address is stage ``r - 1``'s)."""
        fields = {v for v, mem in self.reads.items() if mem == memory}
        return min(k for k, st in enumerate(self.stages, 1) for op in st if fields & set(self.uses(op)))

    def write_stage(self, fields) -> int:
        """The stage that writes a state group: the one after it makes its last field."""
        return 1 + max(self.made_in(f) for f in fields)

    def last_use(self, value: str, writes=()) -> int:
        """The last stage that reads ``value``: an operation, a memory write (``writes``: lists
        of fields written together), or stage ``K`` (``q`` and ``ovf``: the spike output)."""
        last = max((k for k, st in enumerate(self.stages, 1) for op in st if value in self.uses(op)), default=0)
        for fields in writes:
            if value in fields:
                last = max(last, self.write_stage(fields))
        if value in ("q", "ovf"):
            last = self.K
        return last

    def live(self, k: int, writes=()) -> list:
        """Values register ``p_k`` holds: made before stage ``k``, used in stage ``k`` or later."""
        values = [v for st in self.stages for op in st for v in self.ops[op][1]]
        values += [v for v in self.reads if any(v in self.uses(op) for op in self.all_ops)]
        seen = []
        for v in values:
            if v not in seen and self.made_in(v) < k <= self.last_use(v, writes):
                seen.append(v)
        return seen


def _check(cfg):
    if not isinstance(cfg, EqSpikeConfig):
        raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")


def layer_plan(cfg: EqSpikeConfig, output: bool) -> Plan:
    """The update pipeline of a non-input core (``output``: the output layer, with the nudge)."""
    _check(cfg)
    P = cfg.mul_stages
    dec = _chain("dec", P)
    if output:   # the nudge's multiply beside the decoder's; its sign where the decoder finishes
        if P == 1:
            dec = [dec[0]]
        else:
            nudge = _chain("nudge", P)[:-1]
            dec = [d + n for d, n in zip(dec, nudge + [[]] * len(dec))]
            dec[P - 1] = dec[P - 1] + ["nudge_sign"]
    stages = [["acc"]] + dec
    if output and P == 1:
        stages.append(["nudge_op", "nudge_mul", "nudge_sign", "input"])
    else:
        stages.append(["input"])
    stages += _chain("st", P) + _chain("enc", P) + [["sigma"]]
    ops = dict(LAYER_OPS)
    reads = {k: v for k, v in LAYER_READS.items() if output or k != "y"}
    return Plan(tuple(tuple(st) for st in stages), ops, reads)


def input_plan(cfg: EqSpikeConfig) -> Plan:
    """The update pipeline of the input core: stage 1 only reads (the words arrive at stage 2)."""
    _check(cfg)
    return Plan(tuple(tuple(st) for st in [[]] + _chain("enc", cfg.mul_stages) + [["sigma"]]),
                dict(INPUT_OPS), dict(INPUT_READS))


#: What each operation does, for the stage labels.
_LABELS = {"acc": "register the accumulator lane", "dec_op": "decoder operand", "dec_mul": "decoder product",
           "dec_fin": "decoder: v", "nudge_op": "nudge operand", "nudge_mul": "nudge product",
           "nudge_sign": "nudge sign", "input": "neuron input: x", "st_op": "state operand",
           "st_mul": "state product", "st_fin": "state step: s", "enc_op": "encoder operand",
           "enc_mul": "encoder product", "enc_fin": "predictive encoder: a", "sigma": "sigma-delta: phi, q"}


def _labels(plan: Plan, write: str) -> tuple:
    out = []
    for st in plan.stages:
        names = [_LABELS[op] for op in st]
        out.append("; ".join(names) if names else "read the words")
    return tuple(out) + (write,)


def update_stages(cfg: EqSpikeConfig, output: bool = False) -> tuple:
    """Labels of a non-input core's stages ``1 .. K``."""
    return _labels(layer_plan(cfg, output), "write x, a, phi, q + spike")


def input_stages(cfg: EqSpikeConfig) -> tuple:
    """Labels of the input core's stages ``1 .. K``."""
    return _labels(input_plan(cfg), "write a, rho_last, phi, q + spike")
