#!/bin/sh
# A stand-in for a Kubernetes release binary: ckslab grades its digest, nobody runs it.
echo "this file only stands in for a Kubernetes release binary" >&2
exit 1
