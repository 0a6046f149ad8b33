"""Watching the champion: its evaluation on the newest batch, drift, the triggers that decide a
retrain, champion against challenger."""
