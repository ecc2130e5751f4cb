"""Every text a person reads: receipts, rejections, reminders, notices, digests, bulletins."""
