"""The `retrain` command: what is not a DVC stage (registry, fetch, predict, ingest, simulate)."""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
from pathlib import Path

from retrain.data import files
from retrain.data.contract import CleaningPolicy, Schema
from retrain.errors import DataError, one_line
from retrain.execution import limited_threads
from retrain.log import ENV, get, setup, timed
from retrain.params import load, section
from retrain.registry.champion import load_champion, read_pointer, trusted_pointer, verify
from retrain.registry.commands import AlreadyHeld, AlreadyPromoted, fetch, hold, promote, rollback, unpin
from retrain.registry.history import in_production_at, pointer_history, previous_version, table
from retrain.registry.remote import init_remote
from retrain.registry.tags import STAGE
from retrain.reporting.markdown import job_markdown

log = get("predict")


def cmd_promote(args: argparse.Namespace) -> None:
    params = load(args.params)
    registry = section(params, "registry")
    freq = Schema.from_params(section(params, "schema")).period
    try:
        version = promote(
            ".", str(registry["model_name"]), registry["bump"], registry["on_schema_change"], freq=freq
        )
    except AlreadyPromoted as done:
        print(done)
        return
    print(f"promoted {registry['model_name']} {version} to {STAGE}")


def cmd_hold(args: argparse.Namespace) -> None:
    name = str(section(load(args.params), "registry")["model_name"])
    try:
        version = hold(".", name)
    except AlreadyHeld as done:
        print(done)
        return
    baseline = read_pointer(".")["baseline"]
    print(
        f"held {name} {version} in {STAGE} as of {baseline['as_of']}: its score on that "
        "holdout is now the baseline the next batches are judged against"
    )


def cmd_rollback(args: argparse.Namespace) -> None:
    params = load(args.params)
    name = str(section(params, "registry")["model_name"])
    if args.until:
        from retrain.data.schema import parse_period

        parse_period(args.until, Schema.from_params(section(params, "schema")).period, "--until")
    as_of = None
    if Path("reports/decision.json").exists():
        as_of = files.read_json("reports/decision.json").get("as_of")
    before = read_pointer(".").get("version")
    target = args.to or previous_version(pointer_history("."), before)
    version = rollback(".", name, args.reason, to=target, as_of=as_of, until=args.until)
    ends = f"through {args.until}" if args.until else "until 'retrain unpin'"
    print(
        f"rolled {name} back from {before} to {version} in {STAGE}; pinned there {ends}: "
        f"the automatic job promotes nothing meanwhile, and never {before}'s bytes again"
    )


def cmd_unpin(args: argparse.Namespace) -> None:
    name = str(section(load(args.params), "registry")["model_name"])
    version = unpin(".", name, args.reason)
    print(f"unpinned {name} {version} in {STAGE}: the job may promote a better challenger again")


def cmd_history(args: argparse.Namespace) -> None:
    params = load(args.params)
    freq = Schema.from_params(section(params, "schema")).period
    events = pointer_history(".")
    production = trusted_pointer(".")[0].get("version")
    if args.at:
        from retrain.data.schema import parse_period

        parse_period(args.at, freq, "--at")
        serving = in_production_at(events, args.at, freq)
        if args.json:
            print(
                files.dumps_json(
                    {"period": args.at, "version": serving and serving["version"], "event": serving}
                ),
                end="",
            )
        else:
            print(
                f"{args.at}: {serving['version']} ({serving['action']} as of {serving['as_of']})"
                if serving
                else f"{args.at}: no model in production"
            )
        return
    if args.json:
        print(files.dumps_json({"production": production, "events": events}), end="")
        return
    if not events:
        print("no model has been promoted yet")
        return
    print(table(events, production, str(section(params, "metrics")["primary"])))


def cmd_init_remote(args: argparse.Namespace) -> None:
    print(init_remote(".", args.path))


def cmd_verify(args: argparse.Namespace) -> None:
    name = str(section(load(args.params), "registry")["model_name"])
    print("\n".join(verify(".", name)))


def cmd_fetch(args: argparse.Namespace) -> None:
    name = str(section(load(args.params), "registry")["model_name"])
    summary = fetch(".", name, files.output_path(args.output), stage=args.stage, version=args.version)
    print(f"fetched {name} {summary['version']} (md5 {summary['md5']}) to {args.output}")


def cmd_simulate(args: argparse.Namespace) -> None:
    from retrain.data.schema import parse_period, period_name
    from retrain.data.simulate import SimConfig, next_period, simulate_batch

    params = load(args.params)
    schema = Schema.from_params(section(params, "schema"))
    sim = section(params, "simulate")
    config = SimConfig.from_params(sim)
    out_dir = files.confined(args.out)
    source = files.read_parquet(sim["source"])
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = [files.batch_stem(p) for p in files.list_batches(out_dir)]
    for _ in range(args.months):
        period = (
            parse_period(args.period, schema.period, "--period")
            if args.period
            else next_period(existing, config, schema.period)
        )
        name = period_name(period)
        target = out_dir / f"{name}.csv"
        if name in existing or target.exists():
            raise DataError(f"{target}: batch for {name} exists already; nothing was written")
        frame, active = simulate_batch(source, schema, config, period, args.unlabelled)
        files.write_text(target, frame.to_csv(index=False))
        existing.append(name)
        print(
            f"simulate: wrote {target} ({len(frame)} rows"
            f"{', no labels' if args.unlabelled else ''}; scenarios: "
            f"{', '.join(active) or 'stable'})"
        )
        if args.period:
            break


def cmd_predict(args: argparse.Namespace) -> None:
    from retrain.data.schema import read_rows_to_score
    from retrain.model.modeling import predictions

    params = load(args.params)
    schema = Schema.from_params(section(params, "schema"))
    cleaning = CleaningPolicy.from_params(section(params, "prepare")["cleaning"])
    source, target = Path(args.input), files.output_path(args.output)
    if target.resolve() == source.resolve():
        raise DataError(f"{target}: the output would overwrite the input; choose another -o")
    with timed(log, f"read {source}", logging.DEBUG):
        rows = read_rows_to_score(source, schema, cleaning)
    champion = load_champion(".")
    if champion is None:
        raise DataError("no model is in production yet: run `dvc repro` and `retrain promote`")
    pointer = champion.pointer
    with timed(log, f"scored {len(rows)} rows with {pointer['version']}"):
        scored = predictions(champion.model, rows, schema, float(section(params, "metrics")["threshold"]))
    files.write_frame(target, scored)
    print(
        f"predict: wrote {target} ({len(scored)} rows, {int((scored['label'] == schema.positive).sum())} "
        f"predicted {schema.positive!r}, model {pointer['name']} {pointer['version']})"
    )


def cmd_report(args: argparse.Namespace) -> None:
    import subprocess

    target = files.output_path(args.output)
    diff = subprocess.run(
        [sys.executable, "-m", "dvc", "metrics", "diff", "--md", args.base], capture_output=True, text=True
    )
    text = job_markdown(
        files.read_json(args.decision),
        files.read_json(args.verdict),
        read_pointer(".").get("version"),
        diff.stdout if diff.returncode == 0 else f"(dvc metrics diff failed: {diff.stderr.strip()[:200]})",
        against_schedules=(
            files.read_text("reports/backtest.md").strip() if Path("reports/backtest.md").exists() else ""
        ),
    )
    files.write_text(target, text)
    print(f"report: wrote {args.output}")


def cmd_ingest(args: argparse.Namespace) -> None:
    from retrain.data.ingest import Settings, run

    params = load(args.params)
    today = args.today or datetime.datetime.now(datetime.UTC).date()
    run(
        settings=Settings.from_params(section(params, "ingest")),
        schema=Schema.from_params(section(params, "schema")),
        policy=CleaningPolicy.from_params(section(params, "prepare")["cleaning"]),
        raw_dir=Path(args.out),
        today=today,
        only=args.period,
        dry_run=args.dry_run,
        replace=args.replace,
        limit=args.limit,
    )


def cmd_serve(args: argparse.Namespace) -> None:
    from retrain.serving import Limits, serve

    settings = section(load(args.params), "serve")
    serve(
        limits=Limits.from_params(settings),
        host=args.host or settings["host"],
        port=args.port or settings["port"],
        follow=args.follow,
        workdir=Path(args.workdir) if args.workdir else None,
        poll_seconds=args.poll_seconds,
    )


def _iso_date(value: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-29, got {value!r}") from None


EXIT_CODES = (
    "exit codes: 0 done; 1 error, one line on stderr naming the file, column or row and what\n"
    "was expected; 2 a usage mistake; 3 refused, nothing changed"
)
EXAMPLES = {
    "promote": "dvc repro && retrain promote && dvc repro && git add -A && git commit -m 'Evaluate'",
    "hold": "retrain hold    # after compare kept the champion against a trained challenger",
    "rollback": "retrain rollback --previous --reason 'v1.3.0 mislabels new customers' --until 2026-03",
    "unpin": "retrain unpin --reason 'v1.3.0 fixed upstream'",
    "history": "retrain history --at 2025-11",
    "init-remote": "retrain init-remote /mnt/shared/churn-dvc-storage",
    "verify": "retrain verify",
    "fetch": "retrain fetch --stage prod -o deploy/model",
    "predict": "retrain predict data/raw/2025-12.csv -o predictions.parquet",
    "report": "retrain report --base HEAD~1 -o reports/job.md",
    "ingest": "retrain ingest --dry-run && retrain ingest",
    "serve": "retrain serve --follow git@github.com:you/churn.git --poll-seconds 10",
    "simulate": "retrain simulate --months 3",
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="retrain", description=__doc__)
    top.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        help=f"DEBUG, INFO (default), WARNING or ERROR; or set {ENV}",
    )
    top.add_argument("--log-level", help=f"DEBUG, INFO (default), WARNING or ERROR; or set {ENV}")
    sub = top.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=help,
            description=help,
            epilog=f"example:\n  {EXAMPLES[name]}\n\n{EXIT_CODES}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add("promote", help="apply reports/promotion.json: commit, tag, point prod")
    p.set_defaults(func=cmd_promote)

    p = add(
        "hold",
        help="apply a verdict that kept the champion against a challenger: its "
        "score on that holdout becomes its baseline, so the same change does "
        "not ask for a retrain again",
    )
    p.set_defaults(func=cmd_hold)

    p = add("rollback", help="point production back at an earlier version")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--to", metavar="vX.Y.Z", help="the version to put back in production")
    which.add_argument("--previous", action="store_true", help="the version before this one")
    p.add_argument("--reason", required=True, help="why; recorded in the pointer and commit")
    p.add_argument(
        "--until",
        metavar="PERIOD",
        help="pin production through this period only (default: until 'retrain unpin')",
    )
    p.set_defaults(func=cmd_rollback)

    p = add("unpin", help="after a rollback, let the job promote a better challenger again")
    p.add_argument("--reason", required=True, help="why; recorded in the pointer and commit")
    p.set_defaults(func=cmd_unpin)

    p = add("history", help="every promotion and rollback, production marked")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--at", metavar="PERIOD", help="which version served batch PERIOD")
    p.set_defaults(func=cmd_history)

    p = add(
        "init-remote",
        help="make a local folder outside the work tree the default DVC "
        "remote (committed in .dvc/config) and push the models there",
    )
    p.add_argument("path", nargs="?", help="the folder (default: <this clone>.dvc-storage beside the clone)")
    p.set_defaults(func=cmd_init_remote)

    p = add(
        "verify",
        help="check that the pointer, the version tag, the stage tags (GTO) and "
        "the model's files all name the same production model; exit 1 and "
        "one line naming the disagreement and its repair otherwise",
    )
    p.set_defaults(func=cmd_verify)

    p = add("fetch", help="write the production model to a directory, md5-checked")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--stage", default=STAGE, help=f"stage to fetch (default {STAGE})")
    which.add_argument("--version", metavar="vX.Y.Z", help="a version instead of a stage")
    p.add_argument("-o", "--output", required=True, help="directory to write to")
    p.set_defaults(func=cmd_fetch)

    p = add("predict", help="score a CSV or Parquet file with the production model")
    p.add_argument("input", help="file with the id and feature columns of params.yaml schema")
    p.add_argument("-o", "--output", required=True, help="predictions file (.csv or .parquet)")
    p.set_defaults(func=cmd_predict)

    p = add("report", help="markdown report of the last run (decision, drift, verdict)")
    p.add_argument("--base", default="HEAD", help="revision to diff metrics against")
    p.add_argument(
        "--decision",
        default="reports/decision.json",
        help="the decision to report (the CI job passes the one that led to its "
        "promotion, saved before the champion was evaluated again)",
    )
    p.add_argument(
        "--verdict", default="reports/promotion.json", help="the compare verdict to report (likewise)"
    )
    p.add_argument("-o", "--output", default="reports/job.md", help="file to write")
    p.set_defaults(func=cmd_report)

    p = add(
        "ingest",
        help="pull every closed period after the newest in data/raw from the warehouse "
        "(params ingest; connection from RETRAIN_DB_URL or DVC's db config)",
    )
    p.add_argument("--period", help="pull this one period (even an older one)")
    p.add_argument("--dry-run", action="store_true", help="list the periods and their row counts only")
    p.add_argument("--replace", action="store_true", help="with --period: pull it again over its file")
    p.add_argument("--limit", type=int, metavar="N", help="take at most N periods (the oldest first)")
    p.add_argument("--today", type=_iso_date, help="the date that decides which periods are closed")
    p.add_argument("--out", default="data/raw", help="batch directory (default data/raw)")
    p.set_defaults(func=cmd_ingest)

    p = add(
        "serve",
        help="serve the production model over HTTP (POST /predict, GET /health, /ready, "
        "/version, /metrics); with --follow, swap to each new production version",
    )
    p.add_argument("--host", help="address (default params serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default params serve.port)")
    p.add_argument("--follow", metavar="GIT_REMOTE", help="follow this repository's prod stage")
    p.add_argument("--workdir", help="where to keep the followed clone (default: a user cache folder)")
    p.add_argument("--poll-seconds", type=float, help="poll interval (default params serve.poll_seconds)")
    p.set_defaults(func=cmd_serve)

    p = add("simulate", help="write the next batch(es) of demo data")
    p.add_argument("--months", type=int, default=1, help="how many batches to write")
    p.add_argument("--period", help="write this period instead of the next one")
    p.add_argument("--unlabelled", action="store_true", help="leave the target column blank")
    p.add_argument("--out", default="data/raw", help="batch directory (default data/raw)")
    p.set_defaults(func=cmd_simulate)
    return top


@one_line
def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    setup("cli", args.log_level)
    with limited_threads():
        args.func(args)


if __name__ == "__main__":
    sys.exit(main())
