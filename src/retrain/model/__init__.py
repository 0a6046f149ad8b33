"""The model: preprocessing, fitting and scoring, metrics, training a challenger."""
