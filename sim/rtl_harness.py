"""Transaction-level driver of :class:`rtl.network.Network` in Amaranth's simulator.

Mirrors :class:`golden_model.fixed_model.FixedModel`'s API (``reset``, ``tick``, registers
by their model names) so tests compare RTL and model with ``==``. Everything runs inside one
async testbench: write ``async def body(h): ...`` and call ``RTLHarness(cfg).run(body)``.

Two access paths: the host command streams (``command``, ``load``, ``reset``, ``tick``,
``read_reg``, ``status``: what a cocotb testbench or the UART host link does) and a zero-time
backdoor into the per-neuron memories (``registers``) for tick-by-tick comparison.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from golden_model.config import EqSpikeConfig
from golden_model.fixed_model import FixedModel, FixedState, quantise_params
from golden_model.float_model import glorot_params
from rtl.network import Network, Op, Phase, Reg, Space, Status
from rtl.layer import DERIVED, state_memories, state_word

__all__ = ["HostSequences", "RTLHarness", "register_names", "diff_registers", "NUDGE_PHASE", "random_network",
           "digits_network", "profile_run", "train_tick_cycles"]

#: nudge sign -> RUN phase
NUDGE_PHASE = {0: Phase.FREE, 1: Phase.NUDGE_POS, -1: Phase.NUDGE_NEG}


def register_names(l: int) -> tuple:
    """Registers of layer ``l`` as FixedState.registers(l) names them."""
    return ("s", "a", "rho_last", "phi", "q") + (("acc", "v", "x") if l > 0 else ())


def diff_registers(rtl_regs: list, st: FixedState, limit: int = 5) -> list:
    """Mismatches between RTL registers (list of dicts of (n,) arrays) and model state (batch 0)."""
    out = []
    for l, regs in enumerate(rtl_regs):
        model = st.registers(l)
        for name in register_names(l):
            want, got = np.asarray(model[name][0]), regs[name]
            bad = np.flatnonzero(want != got)
            if bad.size:
                i = int(bad[0])
                out.append(f"tick {st.t} layer {l} {name}[{i}]: rtl {int(got[i])} != model {int(want[i])} "
                           f"({bad.size} differ)")
                if len(out) >= limit:
                    return out
    return out


class HostSequences:
    """Transaction sequences over the host command port, shared by the Amaranth-simulator
    harness and the cocotb driver: they need ``command(op, space, ...)`` and ``registers()``."""

    async def load(self, model: FixedModel):
        """Write every weight and bias of ``model`` through the host interface."""
        for mat, w in enumerate(model.weights):
            for j in range(w.shape[0]):
                for k in range(w.shape[1]):
                    await self.command(Op.WRITE, Space.WEIGHT, layer=mat, row=j, col=k, data=int(w[j, k]))
        for l, b in enumerate(model.biases, start=1):
            for n in range(b.shape[0]):
                await self.command(Op.WRITE, Space.BIAS, layer=l, row=n, data=int(b[n]))

    async def reset(self, x_codes, y_codes=None):
        """New sample: clear every register, write inputs (and targets) of one sample."""
        await self.command(Op.RESET)
        for n, code in enumerate(np.asarray(x_codes).reshape(-1)):
            await self.command(Op.WRITE, Space.INPUT, row=n, data=int(code))
        if y_codes is not None:
            for n, code in enumerate(np.asarray(y_codes).reshape(-1)):
                await self.command(Op.WRITE, Space.TARGET, row=n, data=int(code))

    async def run_ticks(self, n: int, nudge_sign: int = 0) -> int:
        """Run ``n`` ticks; returns the tick counter afterwards."""
        return await self.command(Op.RUN, phase=NUDGE_PHASE[nudge_sign], data=n)

    async def tick(self, nudge_sign: int = 0) -> list:
        """One tick; returns the new spikes, one (n_l,) 0/1 array per layer (like FixedModel.tick)."""
        await self.run_ticks(1, nudge_sign)
        return [regs["q"] for regs in self.registers()]

    # -- on-chip learning (cfg.learning) ------------------------------------------------------------
    async def train_sample(self, x_codes, y_codes) -> int:
        """One training sample: WRITE INPUT and TARGET, then TRAIN; returns beta's sign (+1/-1)."""
        cmds = [(Op.WRITE, dict(space=Space.INPUT, row=n, data=int(v)))
                for n, v in enumerate(np.asarray(x_codes).reshape(-1))]
        cmds += [(Op.WRITE, dict(space=Space.TARGET, row=n, data=int(v)))
                 for n, v in enumerate(np.asarray(y_codes).reshape(-1))]
        await self.commands_many(cmds)
        return await self.command(Op.TRAIN)

    async def read_params(self) -> tuple:
        """Every weight (learning-format codes) and bias through host READs (issued back to
        back); returns ``(weights, biases)`` as lists of int64 arrays, like OnChipLearner's."""
        L = self.cfg.layers
        cmds = [(Op.READ, dict(space=Space.WEIGHT, layer=mat, row=j, col=k))
                for mat in range(len(L) - 1) for j in range(L[mat]) for k in range(L[mat + 1])]
        cmds += [(Op.READ, dict(space=Space.BIAS, layer=l, row=n)) for l in range(1, len(L)) for n in range(L[l])]
        vals = iter(await self.commands_many(cmds))
        weights = [np.array([next(vals) for _ in range(L[m] * L[m + 1])], dtype=np.int64).reshape(L[m], L[m + 1])
                   for m in range(len(L) - 1)]
        biases = [np.array([next(vals) for _ in range(L[l])], dtype=np.int64) for l in range(1, len(L))]
        return weights, biases

    async def commands_many(self, cmds) -> list:
        """Send ``(op, fields)`` commands in order; returns their responses.

        Issued back to back: each command is offered right after the previous response's
        handshake, and the top accepts it at the next clock edge (it takes one command at a
        time), so there are no idle cycles to pipeline away; the cost of a bulk read is the
        simulator's per-command overhead."""
        return [await self.command(op, **fields) for op, fields in cmds]


class RTLHarness(HostSequences):
    """Simulated :class:`~rtl.network.Network` with a FixedModel-like, awaitable API.

    Parameters
    ----------
    cfg : EqSpikeConfig
    fault, bus_stall
        Passed to :class:`~rtl.network.Network`.

    Members
    -------
    dut : Network
    ctx : the testbench context while ``run`` executes
    commands : int
        Host commands issued so far.
    """

    def __init__(self, cfg: EqSpikeConfig, fault=None, bus_stall=None):
        self.cfg = cfg
        self.dut = Network(cfg, fault=fault, bus_stall=bus_stall)
        self.ctx = None
        self.commands = 0
        self.latency = 0

    def run(self, body, vcd: str | None = None):
        """Simulate, running ``await body(self)`` as the testbench; returns its result."""
        sim = Simulator(self.dut)
        sim.add_clock(1e-6)
        result = {}

        async def testbench(ctx):
            self.ctx = ctx
            result["value"] = await body(self)

        sim.add_testbench(testbench)
        if vcd:
            with sim.write_vcd(vcd):
                sim.run()
        else:
            sim.run()
        return result.get("value")

    # -- host command streams ---------------------------------------------------------------------
    async def command(self, op, space=Space.WEIGHT, layer=0, reg=0, phase=Phase.FREE, row=0, col=0,
                      data=0) -> int:
        """Send one command, wait for its response, return the response data."""
        ctx, dut = self.ctx, self.dut
        reg = reg.value if hasattr(reg, "value") else int(reg)
        ctx.set(dut.cmd.payload, {"op": op, "space": space, "layer": layer, "reg": reg, "phase": phase,
                                  "row": row, "col": col, "data": int(data)})
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)
        ctx.set(dut.cmd.valid, 0)
        ctx.set(dut.rsp.ready, 1)
        edges = 0
        while True:    # until the response handshake (values sampled at each clock edge)
            _, _, valid, value = await ctx.tick().sample(dut.rsp.valid, dut.rsp.payload.data)
            edges += 1
            if valid:
                break
        ctx.set(dut.rsp.ready, 0)
        self.commands += 1
        # cycles from acceptance until the response is valid (READ and WEIGHT WRITE: 4, other WRITEs: 2)
        self.latency = edges - 1
        return int(value)

    async def counters(self) -> dict:
        """Every performance counter (see rtl.network.Status); per-layer ones as lists."""
        out = {name: await self.status(name) for name in ("tick", "cycles", "acc_cycles", "upd_cycles")}
        for name in ("issues", "events", "spikes", "overflows"):
            out[name] = [await self.status(name, l) for l in range(self.cfg.n_layers)]
        return out

    async def tick_profile(self, nudge_sign: int = 0) -> dict:
        """One tick; returns the counters' increments over it (cycles, issues per layer, ...)."""
        before = await self.counters()
        await self.run_ticks(1, nudge_sign)
        after = await self.counters()
        return {k: ([a - b for a, b in zip(after[k], before[k])] if isinstance(after[k], list)
                    else after[k] - before[k]) for k in after}

    async def read_reg(self, l: int, name: str, n: int) -> int:
        """One register of one neuron through the host interface."""
        return await self.command(Op.READ, Space.STATE, layer=l, reg=Reg[name.upper()], row=n)

    async def read_param(self, space: str, layer: int = 0, row: int = 0, col: int = 0) -> int:
        """Read back a host-written parameter: space "weight" (layer = matrix), "bias", "input", "target"."""
        return await self.command(Op.READ, Space[space.upper()], layer=layer, row=row, col=col)

    async def status(self, name: str, l: int = 0) -> int:
        return await self.command(Op.READ, Space.STATUS, layer=l, reg=Status[name.upper()])

    # -- backdoor --------------------------------------------------------------------------------
    def weight_words(self, model: FixedModel) -> dict:
        """Expected contents of every weight memory, ``{(layer, "w_below"|"w_above"): [word, ...]}``.

        Layer ``l`` stores ``W_{l-1}`` by rows (word ``j * C + c``, lane ``i``: ``W[j, c*lanes + i]``)
        and ``W_l`` transposed (word ``k * C + c``, lane ``i``: ``W[c*lanes + i, k]``); lanes past
        the layer's last neuron hold 0.
        """
        cfg, L, out = self.cfg, self.cfg.lanes, {}
        for l, core in enumerate(self.dut.cores[1:], start=1):
            n, C = cfg.layers[l], core.C
            mats = [("w_below", model.weights[l - 1], core.wb_fmt)]
            if not core.is_output:
                mats.append(("w_above", model.weights[l].T, core.wa_fmt))
            for name, w, fmt in mats:          # w: (sources, n_l)
                mask = (1 << fmt.width) - 1
                words = []
                for src in range(w.shape[0]):
                    for c in range(C):
                        word = 0
                        for i in range(L):
                            if c * L + i < n:
                                word |= (int(w[src, c * L + i]) & mask) << (i * fmt.width)
                        words.append(word)
                out[(l, name)] = words
        return out

    def load_backdoor(self, model: FixedModel):
        """Write weights and biases straight into the memories (zero time; same layout as ``load``)."""
        for (l, name), words in self.weight_words(model).items():
            mem, first = self.dut.cores[l].weight_memory(name)
            for addr, word in enumerate(words):
                self.ctx.set(mem.data[first + addr], word)
        for l, b in enumerate(model.biases, start=1):
            mem, w, U = self.dut.cores[l].bias, self.cfg.biases[l - 1].width, self.cfg.update_lanes_of(l)
            words = {}
            for n, code in enumerate(b):     # one update group (U biases) per word
                g, u = state_word(self.cfg, l, n)
                words[g] = words.get(g, 0) | ((int(code) & ((1 << w) - 1)) << (u * w) if U > 1 else int(code))
            for g, word in words.items():
                self.ctx.set(mem.data[g], word)

    def param_memories(self) -> dict:
        """Backdoor read of every stored parameter copy: ``{"w_below": [W_0, ...],
        "w_above": {l: W_l (from core l's transposed copy)}, "bias": [b_1, ...]}`` (codes)."""
        cfg, L, ctx = self.cfg, self.cfg.lanes, self.ctx
        out = {"w_below": [], "w_above": {}, "bias": []}

        def lane(word, t, fmt):
            v = (word >> (t * fmt.width)) & ((1 << fmt.width) - 1)
            return v - (1 << fmt.width) if v >> (fmt.width - 1) else v

        for l, core in enumerate(self.dut.cores[1:], start=1):
            n, C = cfg.layers[l], core.C
            mats = [("w_below", core.wb_fmt, cfg.layers[l - 1])]
            if not core.is_output:
                mats.append(("w_above", core.wa_fmt, cfg.layers[l + 1]))
            for name, fmt, n_src in mats:      # (n_src, n) as stored: rows = sources
                mem, first = core.weight_memory(name)
                w = np.zeros((n_src, n), dtype=np.int64)
                for src in range(n_src):
                    for c in range(C):
                        word = int(ctx.get(mem.data[first + src * C + c]))
                        for t in range(min(L, n - c * L)):
                            w[src, c * L + t] = lane(word, t, fmt)
                if name == "w_below":
                    out["w_below"].append(w)
                else:
                    out["w_above"][l] = w.T
            bw = cfg.biases[l - 1].width
            words = [int(ctx.get(core.bias.data[g])) for g in range(cfg.groups(l))]
            U = cfg.update_lanes_of(l)
            out["bias"].append(np.array([words[j] if U == 1 else lane(words[j // U], j % U, cfg.biases[l - 1])
                                         for j in range(n)], dtype=np.int64))
        return out

    def registers(self) -> list:
        """Every per-neuron register of every layer, read from the memories in zero time."""
        ctx, out = self.ctx, []
        for l, core in enumerate(self.dut.cores):
            n, U = self.cfg.layers[l], self.cfg.update_lanes_of(l)
            names = register_names(l)
            regs = {name: np.zeros(n, dtype=np.int64) for name in names}
            for name, layout in state_memories(self.cfg, l).items():
                mem = getattr(core, name)
                words = [ctx.get(mem.data[g]) for g in range(self.cfg.groups(l))]
                for i in range(n):          # neuron i: element u of word g (rtl.layer.state_word)
                    g, u = state_word(self.cfg, l, i)
                    word = words[g] if U == 1 else words[g][u]
                    for fld in layout.members:
                        if fld in regs:
                            regs[fld][i] = int(getattr(word, fld))
            if l == 0:
                sw = self.cfg.s.width
                words = [int(ctx.get(core.inputs.data[g])) for g in range(self.cfg.groups(0))]
                regs["s"][:] = [(words[i // U] >> (i % U * sw)) & ((1 << sw) - 1) for i in range(n)]
            else:
                for reg, src in DERIVED.items():
                    regs[reg][:] = regs[src]
            out.append(regs)
        return out


def train_tick_cycles(lrn, x, y, sign) -> list:
    """Cycles of each tick of one TRAIN sample: :func:`rtl.network.tick_cycles` of the spike
    counts of ``lrn`` (an :class:`~golden_model.onchip.OnChipLearner`, before its update)."""
    from rtl.network import tick_cycles
    cfg = lrn.cfg
    model = lrn.model()
    st = model.reset(np.asarray(x)[None], np.asarray(y)[None])
    out = []
    for t in range(cfg.n_steps):
        prev = [int(q.sum()) for q in st.q]
        model.tick(st, 0 if t < cfg.n_free else sign)
        out.append(tick_cycles(cfg, prev, [q[0] for q in st.q]))
    return out


def random_network(cfg: EqSpikeConfig, seed: int, gain: float = 3.0, full_range: bool = False):
    """A FixedModel with random weights/biases, an input sample and a one-hot target.

    Glorot weights times ``gain`` and biases in [-0.3, 0.3], quantised to ``cfg``; with
    ``full_range`` every code of each format is equally likely instead (drives narrow formats
    into saturation).
    """
    rng = np.random.default_rng(seed)
    if full_range:   # every code equally likely: drives the narrow formats into saturation
        w = [rng.integers(f.min_code, f.max_code + 1, size=(a, b))
             for f, a, b in zip(cfg.weights, cfg.layers[:-1], cfg.layers[1:])]
        b = [rng.integers(f.min_code, f.max_code + 1, size=n) for f, n in zip(cfg.biases, cfg.layers[1:])]
    else:
        params = glorot_params(cfg.layers, rng)
        params.weights = [gain * x for x in params.weights]
        params.biases = [rng.uniform(-0.3, 0.3, size=n) for n in cfg.layers[1:]]
        w, b, _ = quantise_params(cfg, params)
    model = FixedModel(cfg, w, b)
    one = 1 << cfg.s.frac
    x = rng.integers(0, one + 1, size=cfg.layers[0])
    y = np.zeros(cfg.layers[-1], dtype=np.int64)
    y[rng.integers(cfg.layers[-1])] = one
    return model, x, y


def digits_network(cfg: EqSpikeConfig, sample: int = 0, seed: int = 0):
    """Glorot weights (quantised to ``cfg``) and one real scikit-learn digit (pixels / 16).

    Returns ``(model, x_codes, y_codes)``; ``cfg.layers`` must start with 64 inputs.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    params = glorot_params(cfg.layers, np.random.default_rng(seed))
    w, b, _ = quantise_params(cfg, params)
    model = FixedModel(cfg, w, b)
    x = model.encode_inputs(digits.data[sample] / 16.0)
    y = np.zeros(cfg.layers[-1], dtype=np.int64)
    y[digits.target[sample] % cfg.layers[-1]] = 1 << cfg.s.frac
    return model, x, y


def profile_run(cfg: EqSpikeConfig, model: FixedModel, x, y, n_free: int, n_nudged: int = 0,
                nudge_sign: int = 1, check: bool = True) -> list:
    """Simulate a sample tick by tick; per tick the counter increments (``tick_profile``) plus
    ``prev`` (the model's spike counts of the previous tick). With ``check`` every register is
    compared with the model (raises AssertionError on the first mismatch)."""
    st = model.reset(np.asarray(x)[None], np.asarray(y)[None])
    h = RTLHarness(cfg)

    async def body(h):
        h.load_backdoor(model)
        await h.reset(x, y)
        rows = []
        for t in range(n_free + n_nudged):
            sign = 0 if t < n_free else nudge_sign
            prev = [int(q.sum()) for q in st.q]
            model.tick(st, sign)
            row = await h.tick_profile(sign)
            row["prev"] = prev
            row["now"] = [q[0].copy() for q in st.q]
            rows.append(row)
            if check:
                bad = diff_registers(h.registers(), st)
                assert not bad, bad
        return rows

    return h.run(body)


def formula_profile(cfg: EqSpikeConfig, model: FixedModel, x_codes, ticks: int) -> dict:
    """Where the cycles of ``ticks`` free ticks go, from the cycle formulas of
    :mod:`rtl.network` and the golden model's spikes on a batch of samples (no RTL simulation).

    Returns per-sample means: ``cycles``, ``accumulate`` and ``update`` cycles, the update
    phase's ``group_waits`` (the spike queue's cycles past the groups,
    ``rtl.network.group_stalls``), ``spikes`` per layer and tick, and which phase and core
    bound each tick (``acc_core``: the core with the most chunk operations)."""
    from rtl.network import accumulate_cycles, events_per_layer, group_stalls, update_cycles
    st = model.reset(np.asarray(x_codes))
    B, k = st.q[0].shape[0], cfg.n_layers
    tot = {"cycles": 0, "accumulate": 0, "update": 0, "group_waits": 0, "spikes": np.zeros(k),
           "acc_core": np.zeros(k), "update_bound": 0}
    for _ in range(ticks):
        prev = [q.sum(axis=1) for q in st.q]
        model.tick(st)
        for b in range(B):
            p = [int(c[b]) for c in prev]
            now = [q[b] for q in st.q]
            acc, upd = accumulate_cycles(cfg, p), update_cycles(cfg, now)
            ev = events_per_layer(cfg, p)
            tot["acc_core"][max(range(1, k), key=lambda l: ev[l] * cfg.chunks(l))] += 1
            tot["update_bound"] += upd > acc
            tot["cycles"] += acc + upd
            tot["accumulate"] += acc
            tot["update"] += upd
            tot["group_waits"] += max(group_stalls(cfg, l, now[l]) for l in range(k))
            tot["spikes"] += [q.sum() for q in now]
    return {name: v / B for name, v in tot.items()}


def _formula_main(args) -> int:
    """Cycle budget of the paper's network from the formulas and real images (``--formula``)."""
    from experiments.data import load_dataset
    from golden_model.config import default_config
    data = load_dataset(args.dataset)
    layers = tuple(args.layers) if args.layers else (data.x_test.shape[1], 500, data.n_classes)
    base = default_config(layers)
    params = glorot_params(layers, np.random.default_rng(args.seed))
    w, b, _ = quantise_params(base, params)
    model = FixedModel(base, w, b)
    x = model.encode_inputs(data.x_test[args.first:args.first + args.samples])
    print(f"{'-'.join(map(str, layers))}, {args.dataset} test images {args.first}..{args.first + args.samples - 1}, "
          f"Glorot weights (seed {args.seed}), {args.free} free ticks; inferences/s at {args.mhz} MHz")
    for lanes in args.lanes:
        for U in args.update_lanes:
            if lanes % U:
                continue
            cfg = base.replace(lanes=lanes, update_lanes=U)
            r = formula_profile(cfg, FixedModel(cfg, w, b), x, args.free)
            t = args.free
            print(f"lanes {lanes:4d} U {U:3d}: {r['cycles'] / t:8.1f} cycles/tick (accumulate {r['accumulate'] / t:7.1f},"
                  f" update {r['update'] / t:6.1f}, of which spike queue {r['group_waits'] / t:5.1f}); "
                  f"update-bound ticks {r['update_bound'] / t:5.1%}; busiest accumulate core per tick "
                  + "/".join(f"L{l} {r['acc_core'][l] / t:.0%}" for l in range(1, cfg.n_layers))
                  + f"; spikes/tick " + "/".join(f"{v / t:.1f}" for v in r["spikes"])
                  + f"; {args.mhz * 1e6 / r['cycles']:8.1f} inferences/s")
    return 0


def _main(argv=None) -> int:
    """Measure cycles per tick and accumulate SOP/cycle on the digits network (docs/architecture.md)."""
    import argparse

    from golden_model.config import default_config
    from rtl.network import events_per_layer, tick_cycles

    p = argparse.ArgumentParser(description=_main.__doc__)
    p.add_argument("--lanes", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--update-lanes", dest="update_lanes_list", type=int, nargs="+",
                   help="neurons updated per cycle (divides every --lanes; one value unless --formula)")
    p.add_argument("--sample", type=int, default=0)
    p.add_argument("--free", type=int, default=100)
    p.add_argument("--nudged", type=int, default=50)
    p.add_argument("--formula", action="store_true",
                   help="no simulation: cycle budget from the formulas and the golden model's spikes on "
                        "--dataset test images (--layers, default inputs-500-classes; --update-lanes list)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--layers", type=int, nargs="+")
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mhz", type=float, default=50.0)
    args = p.parse_args(argv)
    if args.formula:
        args.update_lanes = args.update_lanes_list or [1]
        return _formula_main(args)
    args.update_lanes = (args.update_lanes_list or [1])[0]
    for lanes in args.lanes:
        cfg = default_config((64, 100, 10)).replace(lanes=lanes, update_lanes=args.update_lanes)
        model, x, y = digits_network(cfg, args.sample)
        rows = profile_run(cfg, model, x, y, args.free, args.nudged)
        cyc = np.array([r["cycles"] for r in rows])
        acc = np.array([r["acc_cycles"] for r in rows])
        sops = np.array([sum(e * n for e, n in zip(events_per_layer(cfg, r["prev"]), cfg.layers))
                         for r in rows])
        formula_ok = all(r["cycles"] == tick_cycles(cfg, r["prev"], r["now"]) for r in rows)
        busy = acc > 1
        # the hidden core (layer 1) is the busiest: its own synaptic operations per phase cycle
        hidden = np.array([events_per_layer(cfg, r["prev"])[1] * cfg.layers[1] for r in rows])
        print(f"lanes {lanes}, update lanes {cfg.update_lanes}: {len(rows)} ticks, cycles/tick mean {cyc.mean():.1f} "
              f"(min {cyc.min()}, max {cyc.max()}), accumulate {acc.mean():.1f}, update {np.mean([r['upd_cycles'] for r in rows]):.1f}; "
              f"SOP/cycle in accumulate: all cores {sops[busy].sum() / acc[busy].sum():.2f}, "
              f"hidden core {hidden[busy].sum() / acc[busy].sum():.2f} "
              f"({hidden[busy].sum() / acc[busy].sum() / lanes:.3f} x lanes); "
              f"spikes/tick {np.mean([sum(r['spikes']) for r in rows]):.1f}; formula exact: {formula_ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
