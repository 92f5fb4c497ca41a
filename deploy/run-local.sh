#!/bin/sh
# `make run`: start popgated on the local default configuration.
B=${1:-build/release}
exec "$B/popgated"
