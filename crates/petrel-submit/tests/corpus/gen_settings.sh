#!/bin/sh
echo "+Generated = \"yes\""
echo "request_cpus = 3"
