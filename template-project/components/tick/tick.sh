#!/bin/bash
while true; do
  date
  sleep {{ component.sleep }}
done
