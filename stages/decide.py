"""Stage decide: apply every trigger in params; write reports/decision.json and decision.md."""

from retrain import io
from retrain.errors import one_line
from retrain.params import load, section
from retrain.triggers import decide, summary_markdown


@one_line
def main() -> None:
    decision = decide(io.read_json("reports/evaluation.json"), section(load(), "decide"))
    io.write_json("reports/decision.json", decision)
    io.write_text("reports/decision.md", summary_markdown(decision))
    print(f"decide: retrain={decision['retrain']} ({decision['reason']})")


if __name__ == "__main__":
    main()
