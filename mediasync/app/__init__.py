"""Daemon wiring: scheduler jobs, signals, sd_notify, watching, logs, the instance
lock, the API client as commands build it.
"""
