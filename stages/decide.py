"""Stage decide: apply every trigger in params and write reports/decision.json."""

from retrain import io
from retrain.errors import one_line
from retrain.params import load, section
from retrain.triggers import decide


@one_line
def main() -> None:
    decision = decide(io.read_json("reports/evaluation.json"), section(load(), "decide"))
    io.write_json("reports/decision.json", decision)
    print(f"decide: retrain={decision['retrain']} ({decision['reason']})")


if __name__ == "__main__":
    main()
