"""WF-VAE encode/decode seconds and peak memory: ours vs the official code, same config, same weights.

Every measurement runs in a fresh process (so ``ru_maxrss`` is that operation's peak, weights included),
with ``torch.set_num_threads(threads)``, fp32, random weights from ``torch.manual_seed(0)``, one warm-up call
and ``--repeat`` timed calls. Official and ours are interleaved (the machine may be shared), and an extra
process loads the same weights into both and reports the largest output difference.

"ours" runs with the CPU inference runtime switched on (:mod:`ffasora.runtime.cpu`), as the pipeline and the
CLI run it; ``--plain`` adds the plain model without it. ``--baseline SRC`` adds an older ffasora (the ``src``
folder of another checkout, e.g. from ``git archive``) as "baseline", and the ratio columns then compare
ours with it: a refactoring shows its cost in one run on one machine.

    .venv/bin/python benchmarks/vae.py --sizes 21x128x128,21x512x512 --models s8,small \
        --official /tmp/official_wfvae           # a checkout of PKU-YuanGroup/WF-VAE (needs einops)
    .venv/bin/python benchmarks/vae.py --baseline /tmp/before/src --plain --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_config(name: str):  # -> WFVAEConfig
    from ffasora.models.vae import WFVAEConfig

    if name == "s8":
        return WFVAEConfig()
    preset = tomllib.loads((ROOT / "configs" / "vae" / f"{name}.toml").read_text())
    return WFVAEConfig.from_dict(preset["model"], source=name)


def build(impl: str, name: str, seed: int = 0, weights_from=None):
    """Random-weight model; the official one copies ``weights_from`` (ours) when given, for output checks.

    Timing children build only their own model so that peak memory is not inflated by a second copy.
    """
    import torch

    from ffasora.models.vae import WFVAE

    config = build_config(name)
    torch.manual_seed(seed)
    if impl in ("ours", "plain", "baseline"):
        return WFVAE(config).eval()
    from causalvideovae.model.vae.modeling_wfvae import WFVAEModel

    kwargs = config.to_dict()
    kwargs.pop("in_channels")
    kwargs["scale"] = kwargs["scale"] or [1.0] * config.latent_dim
    kwargs["shift"] = kwargs["shift"] or [0.0] * config.latent_dim
    official = WFVAEModel(**kwargs).eval()
    if weights_from is not None:
        official.load_state_dict(weights_from.state_dict(), strict=True)
    return official


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    t, h, w = (int(v) for v in args.size.split("x"))
    model = build(args.impl, args.model)
    init_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ffasora = args.impl != "official"
    latent = model.config.latent_dim if ffasora else model.config["latent_dim"]
    gen = torch.Generator().manual_seed(1)
    channels = model.config.in_channels if ffasora else 3
    x = torch.rand(1, channels, t, h, w, generator=gen) * 2 - 1
    z = torch.randn(1, latent, (t - 1) // 4 + 1, h // 8, w // 8, generator=gen)
    if args.impl == "baseline":  # the code before the runtime layer: decode options per call
        run = {
            "encode": lambda: model.encode(x, chunk=args.enc_chunk or None).mean,
            "decode": lambda: model.decode(z, chunk=args.dec_chunk or None, tile=args.tile),
        }[args.op]
    elif ffasora:
        prepare(model, args.impl, args.winograd, args)
        run = {
            "encode": lambda: model.encode(x, chunk=args.enc_chunk or None).mean,
            "decode": lambda: model.decode(z),
        }[args.op]
    else:
        run = {
            "encode": lambda: model.encode(x).latent_dist.mode(),
            "decode": lambda: model.decode(z).sample,
        }[args.op]
    compile_s = 0.0
    if args.winograd:
        winograd = _winograd_module(args.impl)

        # Compile the transforms before timing (once per process; inductor caches them on disk after).
        start = time.perf_counter()
        winograd._compiled_transforms()
        compile_s = time.perf_counter() - start
    times, cpu = [], []
    with torch.inference_mode(), _baseline_winograd(args.impl == "baseline" and args.winograd):
        for _ in range(args.warmup):
            run()
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # CPU seconds (all threads) are reported too: on a shared machine they move much less than wall time.
    result = {
        "median": statistics.median(times),
        "min": min(times),
        "cpu": statistics.median(cpu),
        "times": times,
    }
    print(json.dumps(result | {"peak_mb": peak, "init_mb": init_rss, "compile_s": compile_s}))


def prepare(model, impl: str, winograd: bool, args: argparse.Namespace) -> None:
    """Ours as the pipeline runs it: the decode strategy set on the model, the CPU runtime on ("plain": off)."""
    from ffasora.models.vae_decoding import DecodeStrategy
    from ffasora.runtime.cpu import enable_cpu_inference

    model.decoding = DecodeStrategy(chunk=args.dec_chunk or None, tile=args.tile)
    if impl == "ours":
        enable_cpu_inference(model, winograd=winograd)


def _winograd_module(impl: str):  # -> module
    import importlib

    return importlib.import_module(f"ffasora.{'models' if impl == 'baseline' else 'runtime'}.winograd")


def _baseline_winograd(enabled: bool):  # -> context manager
    """The baseline switched Winograd on with a context manager (ours: ``enable_cpu_inference``)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    return _winograd_module("baseline").winograd_convolutions()


def check(args: argparse.Namespace) -> None:
    """Largest |ours - official| for encode (posterior mean) and decode, same weights and inputs."""
    import torch

    torch.set_num_threads(args.threads)
    t, h, w = (int(v) for v in args.size.split("x"))
    ours = build("ours", args.model)
    official = build("official", args.model, weights_from=ours)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, t, h, w, generator=gen) * 2 - 1
    with torch.inference_mode():
        ref_z = official.encode(x).latent_dist.mode()
        ref_x = official.decode(ref_z).sample
        prepare(ours, "ours", args.winograd, args)
        our_z = ours.encode(x, chunk=args.enc_chunk or None).mean
        our_x = ours.decode(ref_z)
    print(
        json.dumps(
            {
                "encode_max_abs": (ref_z - our_z).abs().max().item(),
                "decode_max_abs": (ref_x - our_x).abs().max().item(),
            }
        )
    )


def spawn(args: argparse.Namespace, mode: str, impl: str, model: str, size: str, op: str) -> dict:
    cmd = [sys.executable, __file__, f"--{mode}", "--impl", impl, "--model", model, "--size", size, "--op", op,
           "--repeat", str(args.repeat), "--warmup", str(args.warmup), "--threads", str(args.threads), "--enc-chunk", str(args.enc_chunk),
           "--dec-chunk", str(args.dec_chunk)]  # fmt: skip
    if args.tile:
        cmd += ["--tile", str(args.tile)]
    if args.winograd:
        cmd += ["--winograd"]
    env = dict(os.environ)
    extra = {"official": args.official, "baseline": args.baseline}.get(impl)
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra, env.get("PYTHONPATH", "")]))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        return {
            "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="21x128x128,21x512x512")
    parser.add_argument("--models", default="s8,small")
    parser.add_argument("--ops", default="encode,decode")
    parser.add_argument(
        "--official", default=None, help="path of an official WF-VAE checkout (adds it to PYTHONPATH)"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="src folder of an older ffasora to compare with (adds it to PYTHONPATH)",
    )
    parser.add_argument("--plain", action="store_true", help="also ours without the CPU runtime")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing (0 for long runs)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds (official, ours, ours, official, ...)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--enc-chunk", type=int, default=0, help="pixel frames per encode chunk (0: whole clip)"
    )
    parser.add_argument(
        "--dec-chunk", type=int, default=2, help="latent frames per decode chunk (0: whole clip)"
    )
    parser.add_argument("--tile", type=int, default=None, help="decode tile size in latent pixels")
    parser.add_argument(
        "--winograd", action="store_true", help="ours with Winograd F(4x4, 3x3) convolutions (fp32)"
    )
    parser.add_argument(
        "--check-size", default="21x128x128", help="size for the ours-vs-official output check"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="s8", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="21x128x128", help=argparse.SUPPRESS)
    parser.add_argument("--op", default="encode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.check:
        return check(args)
    rows: dict[tuple, list[dict]] = {}
    for r in range(args.rounds):
        for model in args.models.split(","):
            for size in args.sizes.split(","):
                for op in args.ops.split(","):
                    # the official class is RGB-only: compare only models with 3 input channels
                    rgb = build_config(model).in_channels == 3
                    impls = (
                        (["official"] if args.official and rgb else [])
                        + (["baseline"] if args.baseline else [])
                        + ["ours"]
                        + (["plain"] if args.plain else [])
                    )
                    for impl in impls if r % 2 == 0 else impls[::-1]:
                        result = spawn(args, "child", impl, model, size, op)
                        rows.setdefault((model, size, op, impl), []).append(result)
                        print(
                            json.dumps({"model": model, "size": size, "op": op, "impl": impl, **result}),
                            flush=True,
                        )
    reference = "baseline" if args.baseline else "official"
    print(
        f"\n| model | T x H x W | op | impl | median s | CPU s | peak MB (init) | speed-up vs {reference} "
        "(wall / CPU) | peak ratio |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for (model, size, op, impl), results in rows.items():
        ok = [r for r in results if "median" in r]
        if not ok:
            print(f"| {model} | {size} | {op} | {impl} | {results[0].get('error')} | | | | |")
            continue
        med, cpu = statistics.median(r["median"] for r in ok), statistics.median(r["cpu"] for r in ok)
        peak = max(r["peak_mb"] for r in ok)
        ratio = mem = ""
        other = [r for r in rows.get((model, size, op, reference), []) if "median" in r]
        if impl in ("ours", "plain") and other:
            wall_x = statistics.median(r["median"] for r in other) / med
            cpu_x = statistics.median(r["cpu"] for r in other) / cpu
            ratio = f"{wall_x:.2f}x / {cpu_x:.2f}x"
            mem = f"{peak / max(r['peak_mb'] for r in other):.2f}"
        init = ok[0]["init_mb"]
        print(
            f"| {model} | {size} | {op} | {impl} | {med:.2f} | {cpu:.2f} | {peak:.0f} ({init:.0f}) | {ratio} | {mem} |"
        )
    if args.official:
        for model in [m for m in args.models.split(",") if build_config(m).in_channels == 3]:
            print(
                f"output check {model} {args.check_size}:",
                json.dumps(spawn(args, "check", "", model, args.check_size, "")),
            )


if __name__ == "__main__":
    main()
