"""What the calendar asks of the bureau: reminders, status, the package, the score, templates."""
