"""The pure stages of reading one message: parse, screen, examine, classify, validate, judge."""
