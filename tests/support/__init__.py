"""Helpers the tests share (and bench may use): how a channel and a message are made."""
