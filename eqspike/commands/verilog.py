"""``eqspike verilog``: Verilog of the network top for a config, with the config JSON beside it."""

from __future__ import annotations

from pathlib import Path

NAME = "verilog"
HELP = "generate the network's Verilog (config JSON written beside it)"


def add_arguments(parser):
    parser.add_argument("--config", metavar="CFG.json", help="config file (default: the default config)")
    parser.add_argument("-o", "--output", metavar="OUT.v", default="out/eqspike_top.v",
                        help="Verilog file to write (default: %(default)s); OUT.json gets the config")


def run(args) -> int:
    from golden_model.config import EqSpikeConfig, default_config
    from rtl.verilog import generate

    cfg = EqSpikeConfig.load(args.config) if args.config else default_config()
    out = Path(args.output)
    if out.suffix != ".v":
        raise ValueError(f"output must end in .v, not {str(out)!r}")
    if out.parent.exists() and not out.parent.is_dir():
        raise ValueError(f"output directory {str(out.parent)!r} is not a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = generate(cfg)
    out.write_text(text)
    cfg.save(out.with_suffix(".json"))
    print(f"wrote {out} ({len(text.splitlines())} lines) and {out.with_suffix('.json')}")
    return 0
