"""Float reference of the paper's dynamics (spec sections 1-3), batched over samples.

Two dynamics share one transaction-level API (``reset`` a batch, ``tick`` one step):

* continuous (section 2): ``s_l <- clip((1-eps) s_l + eps (rho'(s_l) pressure_l + nudge_l), 0, 1)``;
* binary communication (section 3): every layer, the clamped input too, sends one bit per step
  through a sigma-delta or stochastic encoder, optionally with predictive coding
  (encoder ``a = (rho - (1-lambda) rho_last) / lambda``, decoder
  ``v = (1-lambda) v + lambda u``); the step size is a schedule ``eps0 / t**eta`` or OSA.

All layers update from the previous step's states (Jacobi order). Every sample starts from
zero state; nothing resets between the free and the nudged phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import Schedule

__all__ = [
    "OSA", "Dynamics", "Params", "FloatState", "FloatModel",
    "rho", "rho_prime", "glorot_params",
]


def rho(s):
    """Activation ``rho(s) = clip(s, 0, 1)``."""
    return np.clip(s, 0.0, 1.0)


def rho_prime(s):
    """``rho'(s) = 1`` on the CLOSED interval [0, 1], 0 outside (inclusive bounds: see spec 1)."""
    return ((s >= 0.0) & (s <= 1.0)).astype(s.dtype)


@dataclass(frozen=True)
class OSA:
    """Optimal step-size algorithm (George & Powell 2006), one instance per neuron and sample.

    Members
    -------
    nu_bar : float
        Target step size of the error statistics.
    e : float
        Stabiliser in ``alpha = 1 - (sigma2 + e) / (delta_bar + e)``.
    """

    nu_bar: float = 0.0346
    e: float = 1e-15


@dataclass(frozen=True)
class Dynamics:
    """How a network evolves: mode, encoder, schedules, phase lengths and beta.

    Members
    -------
    mode : str
        ``"continuous"`` (real-valued messages) or ``"binary"`` (one bit per neuron per step).
    eps : Schedule or OSA
        Step size: a schedule over t = 1, 2, ... or an OSA instance per neuron.
    lam : Schedule
        Predictive-coding lambda per step; constant 1 means no predictive coding (binary only).
    encoder : str
        ``"sigma_delta"`` or ``"stochastic"`` (binary only).
    n_free, n_nudged : int
        Steps of the free and the nudged phase.
    beta : float
        Nudging strength magnitude.
    """

    mode: str = "binary"
    eps: object = field(default_factory=lambda: OSA())
    lam: Schedule = field(default_factory=lambda: Schedule.constant(0.275))
    encoder: str = "sigma_delta"
    n_free: int = 100
    n_nudged: int = 50
    beta: float = 0.5

    def __post_init__(self):
        if self.mode not in ("continuous", "binary"):
            raise ValueError(f"mode must be 'continuous' or 'binary', not {self.mode!r}")
        if self.encoder not in ("sigma_delta", "stochastic"):
            raise ValueError(f"encoder must be 'sigma_delta' or 'stochastic', not {self.encoder!r}")
        if not isinstance(self.eps, (Schedule, OSA)):
            raise ValueError(f"eps must be a Schedule or OSA, not {self.eps!r}")
        if self.n_free < 1 or self.n_nudged < 0:
            raise ValueError(f"need n_free >= 1 and n_nudged >= 0, not {self.n_free}/{self.n_nudged}")

    @classmethod
    def continuous(cls, n_free=20, n_nudged=4, beta=0.5, eps=0.5) -> "Dynamics":
        return cls(mode="continuous", eps=Schedule.constant(eps), lam=Schedule.constant(1.0),
                   n_free=n_free, n_nudged=n_nudged, beta=beta)

    @classmethod
    def from_config(cls, cfg) -> "Dynamics":
        """The float twin of a fixed-point config: same schedules, encoder, steps and beta."""
        return cls(mode="binary", eps=cfg.eps, lam=cfg.lam, encoder="sigma_delta",
                   n_free=cfg.n_free, n_nudged=cfg.n_nudged, beta=cfg.beta)

    def describe(self) -> str:
        if self.mode == "continuous":
            return f"continuous eps={self.eps.to_dict()}, {self.n_free}/{self.n_nudged} steps"
        eps = (f"OSA nu_bar={self.eps.nu_bar}" if isinstance(self.eps, OSA)
               else f"eps={self.eps.to_dict()}")
        return f"binary {self.encoder}, {eps}, lambda={self.lam.to_dict()}, {self.n_free}/{self.n_nudged} steps"


@dataclass
class Params:
    """Float weights ``W_l`` of shape ``(n_l, n_{l+1})`` and biases ``b_l`` (non-input layers)."""

    weights: list
    biases: list

    @property
    def layers(self) -> tuple:
        return tuple([self.weights[0].shape[0]] + [w.shape[1] for w in self.weights])

    def copy(self) -> "Params":
        return Params([w.copy() for w in self.weights], [b.copy() for b in self.biases])

    def astype(self, dtype) -> "Params":
        return Params([w.astype(dtype) for w in self.weights], [b.astype(dtype) for b in self.biases])

    def save(self, path) -> None:
        arrays = {f"W{i}": w for i, w in enumerate(self.weights)}
        arrays.update({f"b{i + 1}": b for i, b in enumerate(self.biases)})
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path) -> "Params":
        with np.load(path) as z:
            n = sum(1 for k in z.files if k.startswith("W"))
            if n == 0:
                raise ValueError(f"{path} holds no weight matrices W0, W1, ...")
            weights = [np.asarray(z[f"W{i}"], dtype=np.float64) for i in range(n)]
            biases = [np.asarray(z[f"b{i + 1}"], dtype=np.float64) for i in range(n)]
        for i in range(1, n):
            if weights[i].shape[0] != weights[i - 1].shape[1]:
                raise ValueError(f"{path}: W{i} has {weights[i].shape[0]} rows, W{i-1} has {weights[i-1].shape[1]} columns")
        return cls(weights, biases)


def glorot_params(layers, rng: np.random.Generator, dtype=np.float64) -> Params:
    """Glorot-uniform weights ``U(-sqrt(6/(n_in+n_out)), +...)`` and zero biases."""
    weights, biases = [], []
    for n_in, n_out in zip(layers[:-1], layers[1:]):
        lim = np.sqrt(6.0 / (n_in + n_out))
        weights.append(rng.uniform(-lim, lim, size=(n_in, n_out)).astype(dtype))
        biases.append(np.zeros(n_out, dtype=dtype))
    return Params(weights, biases)


@dataclass
class FloatState:
    """Per-sample state of a batch. Lists are indexed by layer (index 0 = input layer).

    ``s``: states; binary mode adds ``q`` (spikes), ``v`` (decoder), ``phi`` (sigma-delta),
    ``rho_last`` (predictive encoder) and, with OSA, ``osa`` (per-layer dict of its registers).
    """

    t: int
    x: np.ndarray
    y: np.ndarray | None
    s: list
    q: list = None
    v: list = None
    phi: list = None
    rho_last: list = None
    a: list = None
    osa: list = None
    osa_nu: float = 1.0
    drive: tuple = None     # cache (first tick, array): rho-independent input-layer drive, see FloatModel


class FloatModel:
    """Float network dynamics, batched. ``reset`` a batch, then ``tick(state, beta)``.

    ``beta`` is the signed nudging strength of the tick (0 in the free phase).

    Parameters
    ----------
    params : Params
        Weights and biases. When they already have ``dtype`` the model reads them live (no
        copy): a trainer updates them in place between samples and keeps the model.
    dynamics : Dynamics
    rng : numpy Generator, optional
        Stochastic encoders' random numbers.
    dtype : numpy dtype
    reference : bool
        Run the readable numpy path only. By default the binary sigma-delta tick runs the
        fused kernels of :mod:`golden_model.float_kernels` (same operations in the same order
        and precision) and the continuous tick reuses the input layer's constant drive
        ``rho(x) @ W_0`` within a sample (the same product, computed once).
    """

    def __init__(self, params: Params, dynamics: Dynamics, rng: np.random.Generator | None = None,
                 dtype=np.float64, reference: bool = False):
        same = all(a.dtype == np.dtype(dtype) for a in params.weights + params.biases)
        self.params = params if same else params.astype(dtype)
        self.dyn = dynamics
        self.dtype = dtype
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.layers = params.layers
        self.reference = reference
        self._schedule_values = {}
        self._constants = {}        # fast binary tick: its scalars per (t, nu, beta)
        self._scratch = {}

    # -- transaction-level API ---------------------------------------------------------------
    def reset(self, x: np.ndarray, y: np.ndarray | None = None) -> FloatState:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.layers[0]:
            raise ValueError(f"inputs must have shape (batch, {self.layers[0]}), not {x.shape}")
        B = x.shape[0]
        zeros = [np.zeros((B, n), dtype=self.dtype) for n in self.layers]
        # continuous: the input is clamped inside the step (spec 2), so step 1 reads s_0 = 0;
        # binary: s_0 = x is first read by the input encoder at the end of step 1 (spec 3)
        s0 = x.copy() if self.dyn.mode == "binary" else zeros[0].copy()
        st = FloatState(t=0, x=x, y=None if y is None else np.asarray(y, dtype=self.dtype),
                        s=[s0] + [z.copy() for z in zeros[1:]])
        if self.dyn.mode == "binary":
            st.q = [z.copy() for z in zeros]
            st.v = [None] + [z.copy() for z in zeros[1:]]
            st.phi = [z.copy() for z in zeros]
            st.rho_last = [z.copy() for z in zeros]
            st.a = [z.copy() for z in zeros]
            if isinstance(self.dyn.eps, OSA):
                st.osa = [None] + [{k: z.copy() for k in ("theta", "beta_bar", "delta_bar", "lambda_bar")}
                                   for z in zeros[1:]]
        return st

    def tick(self, st: FloatState, beta: float = 0.0) -> None:
        """Advance every layer by one step (t -> t+1) from the previous step's states."""
        st.t += 1
        if self.dyn.mode == "continuous":
            self._tick_continuous(st, beta)
        else:
            self._tick_binary(st, beta)

    def run(self, st: FloatState, n_steps: int, beta: float = 0.0, callback=None) -> None:
        for _ in range(n_steps):
            self.tick(st, beta)
            if callback is not None:
                callback(st)

    def free_phase(self, x, y=None) -> FloatState:
        st = self.reset(x, y)
        self.run(st, self.dyn.n_free, 0.0)
        return st

    def predict(self, x) -> np.ndarray:
        """argmax of the output state after the free phase."""
        return np.argmax(self.free_phase(x).s[-1], axis=1)

    # -- internals ---------------------------------------------------------------------------
    def _nudge(self, st: FloatState, l: int, beta: float):
        if beta == 0.0 or l != len(self.layers) - 1:
            return None
        if st.y is None:
            raise ValueError("the nudged phase needs targets y")
        # nudge_out = 2 beta (y - s_out_prev): cost ||s_out - y||^2, not multiplied by rho'
        return (2.0 * beta) * (st.y - st.s[l])

    def _tick_continuous(self, st: FloatState, beta: float) -> None:
        """Spec section 2: every layer from the previous step's states, then ``s_0 = x``."""
        W, b = self.params.weights, self.params.biases
        k = len(self.layers) - 1
        eps = float(self.dyn.eps.at(st.t))
        cached = not self.reference and st.s[0] is st.x
        r = [None if (l == 0 and cached) else rho(s) for l, s in enumerate(st.s)]
        new = [st.x]                                            # the input, clamped in the step
        for l in range(1, k + 1):
            if l == 1 and cached:
                # rho(x) @ W_0 is the same product every step of a sample: computed once
                if st.drive is None:
                    st.drive = (0, rho(st.x) @ W[0])
                pressure = b[0] + st.drive[1]
            else:
                pressure = b[l - 1] + r[l - 1] @ W[l - 1]
            if l < k:
                pressure = pressure + r[l + 1] @ W[l].T
            drive = rho_prime(st.s[l]) * pressure
            nudge = self._nudge(st, l, beta)
            if nudge is not None:
                drive = drive + nudge
            new.append(np.clip((1.0 - eps) * st.s[l] + eps * drive, 0.0, 1.0))
        st.s = new

    def _input_drive(self, st: FloatState, t: int) -> np.ndarray:
        """``q_0^{t-1} @ W_0``: the first hidden layer's bottom-up input at tick ``t``.

        The clamped input layer's sigma-delta spike train depends only on ``x`` and the lambda
        schedule, never on the network, so it is simulated ahead for a block of ticks (from the
        encoder registers after tick ``t-1``) and multiplied by ``W_0`` in large products
        (:meth:`_spike_product`) instead of one small product per tick: the per-tick product's
        values (to float rounding on wide input layers), 2-3x cheaper.
        """
        d = st.drive
        if d is not None and d[0] <= t < d[0] + len(d[1]):
            return d[1][t - d[0]]
        B, n0 = st.s[0].shape
        n1 = self.layers[1]
        dyn = self.dyn
        n_free, n_all = dyn.n_free, dyn.n_free + dyn.n_nudged
        cap = max(1, min(128, (1 << 22) // max(1, B * max(n0, n1))))
        phase_left = n_free - t + 1 if t <= n_free else n_all - t + 1 if t <= n_all else cap
        K = max(1, min(cap, phase_left))
        Q = np.empty((K, B, n0), dtype=self.dtype) if self.reference else self._buffer("q", K * B * n0).reshape(K, B, n0)
        Q[0] = st.q[0]
        phi, rho_last, r = st.phi[0], st.rho_last[0], rho(st.s[0])
        if self.reference:
            for i in range(1, K):
                lam = float(dyn.lam.at(t + i - 1))
                a = self._predictive(r, rho_last, lam)
                rho_last = r
                phi, Q[i] = self._sigma_delta(phi, a)
        else:
            from .float_kernels import constants, input_spike_block
            lams = np.array([float(dyn.lam.at(t + i - 1)) for i in range(1, K)])
            active = np.empty((B, n0), dtype=np.bool_)
            input_spike_block(r, rho_last, phi, lams.astype(self.dtype), (1.0 - lams).astype(self.dtype),
                              constants(self.dtype), Q, active)
        if self.reference:
            U = (Q.reshape(K * B, n0) @ self.params.weights[0]).reshape(K, B, n1)
        else:
            # written into reused memory: a fresh multi-MB array per block costs thousands of
            # page faults (Q: the model's scratch; U: this state's last block, finished once a
            # new block starts)
            old = st.drive[1] if st.drive is not None else None
            U = (old.reshape(-1)[:K * B * n1] if old is not None and old.size >= K * B * n1
                 else np.empty(K * B * n1, dtype=self.dtype)).reshape(K, B, n1)
            self._spike_product(Q, active, U)
        st.drive = (t, U)
        return U[0]

    #: Fewest synapses (n_0 n_1) for which :meth:`_spike_product` multiplies sample by sample.
    SAMPLE_PRODUCT_MIN_SYNAPSES = 1 << 16
    #: Largest fraction of (sample, input) pairs spiking in a block for the sample-wise product.
    SAMPLE_PRODUCT_MAX_ACTIVE = 0.8

    def _spike_product(self, Q, active, U) -> None:
        """``U[k] = Q[k] @ W_0`` for a block (K, B, n_0) of 0/1 input spikes.

        An input that does not spike in the block (a zero pixel never does) adds only zeros, so
        on a large first layer each sample is multiplied by the rows of ``W_0`` of its active
        inputs alone (about half the products on Fashion-MNIST). Every sum then holds the same
        nonzero terms in the same order; BLAS adds them in one sequential chain per output when
        the inputs fit its inner block (so the values are the full product's bit for bit: digits,
        the tests' networks), and in a few partial sums otherwise, where they differ from the
        full product by float rounding (784 inputs: a few 1e-6 at most). Small layers and dense
        blocks take the one full product.
        """
        K, B, n0 = Q.shape
        W = self.params.weights[0]
        if (n0 * W.shape[1] < self.SAMPLE_PRODUCT_MIN_SYNAPSES
                or active.mean() > self.SAMPLE_PRODUCT_MAX_ACTIVE):
            np.matmul(Q.reshape(K * B, n0), W, out=U.reshape(K * B, -1))
            return
        for b in range(B):
            idx = np.flatnonzero(active[b])
            np.matmul(Q[:, b, idx], W[idx], out=U[:, b, :])

    def _buffer(self, name: str, size: int) -> np.ndarray:
        """A reusable scratch array of at least ``size`` elements (never held by a state)."""
        buf = self._scratch.get(name)
        if buf is None or buf.size < size:
            buf = self._scratch[name] = np.empty(size, dtype=self.dtype)
        return buf[:size]

    @staticmethod
    def _predictive(r, rho_last, lam: float):
        """Predictive encoder value ``a = (rho - (1 - lambda) rho_last) / lambda``."""
        a = rho_last * (1.0 - lam)
        np.subtract(r, a, out=a)
        a /= lam
        return a

    def _sigma_delta(self, phi, a):
        """``phi' = phi + a; q = [phi' > 1/2]`` (strict); returns (``phi' - q``, ``q``)."""
        phi = phi + a
        q = (phi > 0.5).astype(self.dtype)                      # strict '>'
        phi -= q
        return phi, q

    def _synaptic_sum(self, st: FloatState, l: int, t: int) -> np.ndarray:
        """``u = q_{l-1} @ W_{l-1} + q_{l+1} @ W_l.T`` from the previous step's spikes (a new array)."""
        W = self.params.weights
        if l == 1 and self.dyn.encoder == "sigma_delta":
            u = self._input_drive(st, t).copy()
        else:
            u = st.q[l - 1] @ W[l - 1]
        if l < len(self.layers) - 1:
            u += st.q[l + 1] @ W[l].T
        return u

    def _synaptic_parts(self, st: FloatState, l: int, t: int) -> tuple:
        """:meth:`_synaptic_sum` for the fused kernel: ``(u, u_top, top)``, the sum being
        ``u + u_top`` when ``top`` (layer 1 with the look-ahead input drive: the block's row is
        read in place, not copied), else ``u``."""
        if l == 1 and self.dyn.encoder == "sigma_delta" and len(self.layers) > 2:
            return self._input_drive(st, t), st.q[2] @ self.params.weights[1].T, True
        u = self._synaptic_sum(st, l, t)
        return u, u, False

    def _tick_binary(self, st: FloatState, beta: float) -> None:
        if not self.reference and self.dyn.encoder == "sigma_delta":
            return self._tick_binary_fused(st, beta)
        W, b = self.params.weights, self.params.biases
        k = len(self.layers) - 1
        t = st.t
        lam = float(self.dyn.lam.at(t))
        osa = isinstance(self.dyn.eps, OSA)
        if osa:
            # nu is data-independent: one scalar per step, the same for every neuron
            st.osa_nu = st.osa_nu / (1.0 + st.osa_nu - self.dyn.eps.nu_bar)
        new_s = [st.s[0]]
        for l in range(1, k + 1):
            u = self._synaptic_sum(st, l, t)
            v = st.v[l] * (1.0 - lam)                           # decoder uses lambda^t
            u *= lam
            v += u
            st.v[l] = v
            x = v + b[l - 1]                                    # bias added after decoding
            x *= rho_prime(st.s[l])
            nudge = self._nudge(st, l, beta)
            if nudge is not None:
                x += nudge
            eps = self._osa_step(st.osa[l], st.osa_nu, x, t) if osa else float(self.dyn.eps.at(t))
            s = st.s[l] * (1.0 - eps)
            x *= eps
            s += x
            np.minimum(s, 1.0, out=s)
            np.maximum(s, 0.0, out=s)
            new_s.append(s)
        st.s = new_s
        for l in range(k + 1):                                  # every layer sends, input too
            r = rho(st.s[l])
            a = self._predictive(r, st.rho_last[l], lam)        # encoder uses lambda^t too
            st.rho_last[l] = r
            st.a[l] = a
            st.q[l] = self._encode(st, l, a)

    def _tick_binary_fused(self, st: FloatState, beta: float) -> None:
        """:meth:`_tick_binary` (sigma-delta): every layer's synaptic sum from the previous step's
        spikes, then one kernel per layer for all its elementwise work, encoder included."""
        from .float_kernels import C_GAIN, binary_layer, constants, encode_layer
        b = self.params.biases
        k = len(self.layers) - 1
        t = st.t
        lam = self._at("lam", t)
        osa = isinstance(self.dyn.eps, OSA)
        if osa:
            st.osa_nu = st.osa_nu / (1.0 + st.osa_nu - self.dyn.eps.nu_bar)
        key = (t, st.osa_nu, beta)                              # the same for every sample
        pair = self._constants.get(key)
        if pair is None:
            c = (constants(self.dtype, lam=lam, nu=st.osa_nu, e=self.dyn.eps.e) if osa
                 else constants(self.dtype, lam=lam, eps=self._at("eps", t)))
            c_nudged = c.copy()
            c_nudged[C_GAIN] = 2.0 * beta                        # nudge = 2 beta (y - s_prev)
            pair = self._constants[key] = (c, c_nudged)
        c, c_nudged = pair
        u = [None] + [self._synaptic_parts(st, l, t) for l in range(1, k + 1)]   # previous spikes
        new_s = list(st.s)                                      # a new list, as the reference
        for l in range(1, k + 1):
            nudged = beta != 0.0 and l == k
            if nudged and st.y is None:
                raise ValueError("the nudged phase needs targets y")
            cl = c_nudged if nudged else c
            reg = st.osa[l] if osa else None
            regs = ((reg["theta"], reg["beta_bar"], reg["delta_bar"], reg["lambda_bar"]) if osa
                    else (st.s[l],) * 4)
            out = np.empty((10,) + u[l][0].shape, dtype=self.dtype)  # this tick's new registers
            binary_layer(*u[l], st.v[l], b[l - 1], st.s[l], st.y if nudged else st.s[l], cl, osa, *regs, t == 1,
                         st.rho_last[l], st.phi[l], out)
            st.v[l], new_s[l], th, bb, db, lb, st.rho_last[l], st.a[l], st.phi[l], st.q[l] = out
            if osa:
                reg["theta"], reg["beta_bar"], reg["delta_bar"], reg["lambda_bar"] = th, bb, db, lb
        st.s = new_s
        out = np.empty((4,) + st.s[0].shape, dtype=self.dtype)
        encode_layer(st.s[0], st.rho_last[0], st.phi[0], c, out)
        st.rho_last[0], st.a[0], st.phi[0], st.q[0] = out

    def _at(self, name: str, t: int) -> float:
        """``dyn.<name>.at(t)`` as a float, memoised (the schedules are fixed for a model)."""
        key = (name, t)
        v = self._schedule_values.get(key)
        if v is None:
            v = self._schedule_values[key] = float(getattr(self.dyn, name).at(t))
        return v

    def _encode(self, st: FloatState, l: int, a):
        if self.dyn.encoder == "stochastic":
            return (a > self.rng.random(a.shape)).astype(self.dtype)
        st.phi[l], q = self._sigma_delta(st.phi[l], a)
        return q

    def _osa_step(self, reg: dict, nu: float, x, k: int):
        """One OSA step on input ``x`` (spec section 3); returns alpha, the step size eps^t.

        In-place numpy arithmetic, operation for operation the formulas of the spec::

            err = x - theta
            beta_bar  = (1 - nu) beta_bar  + nu err
            delta_bar = (1 - nu) delta_bar + nu err^2
            sigma2 = (delta_bar - beta_bar^2) / (1 + lambda_bar)
            alpha  = 1 if k == 1 else 1 - (sigma2 + e) / (delta_bar + e)
            lambda_bar = (1 - alpha)^2 lambda_bar + alpha^2
            theta  = (1 - alpha) theta + alpha x        (OSA's own unclipped estimate)
        """
        e = self.dyn.eps.e
        err = x - reg["theta"]
        bb = reg["beta_bar"] * (1.0 - nu)
        nerr = nu * err
        bb += nerr
        db = reg["delta_bar"] * (1.0 - nu)
        nerr *= err
        db += nerr
        reg["beta_bar"], reg["delta_bar"] = bb, db
        sigma2 = bb ** 2
        np.subtract(db, sigma2, out=sigma2)
        sigma2 /= 1.0 + reg["lambda_bar"]
        if k == 1:
            alpha = np.ones_like(x)
        else:
            sigma2 += e
            sigma2 /= db + e
            alpha = np.subtract(1.0, sigma2, out=sigma2)
        one_minus = 1.0 - alpha
        lb = one_minus ** 2
        lb *= reg["lambda_bar"]
        lb += alpha ** 2
        reg["lambda_bar"] = lb
        theta = reg["theta"] * one_minus
        theta += alpha * x
        reg["theta"] = theta
        return alpha
