"""For developers: the demo and the development mail servers."""
