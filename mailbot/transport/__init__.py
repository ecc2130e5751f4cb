"""The edges to the mail servers: IMAP and Maildir sources, the SMTP sender."""
