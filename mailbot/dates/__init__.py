"""Dates in the bureau's terms: the month (Period), Beijing time, working days, deadlines."""
