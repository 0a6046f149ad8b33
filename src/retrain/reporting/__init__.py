"""What a person reads: decision.md, the job summary, the self-contained HTML report and its charts."""
