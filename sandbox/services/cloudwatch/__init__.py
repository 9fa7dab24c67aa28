"""CloudWatch: alarm evaluation, alarm history, and the one helper the live parts publish metrics with."""
