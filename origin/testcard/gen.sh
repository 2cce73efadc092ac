#!/bin/sh
# Regenerates testcard.mp4, the clip the testcard source loops. Run once by
# a maintainer; the output is committed and embedded, so neither builds nor
# CI need ffmpeg for it. 10 s of 640x360 at 25 fps: ffmpeg's "testsrc"
# pattern (moving colour bars, a sweeping gradient and a burnt-in frame
# counter) and a 440 Hz tone with a beep each second; H.264 constrained
# baseline with a keyframe every second (1 s GOP, no scene-cut keyframes), AAC-LC, fragmented
# at every keyframe so each fragment is one chunk.
set -eu
cd "$(dirname "$0")"
ffmpeg -hide_banner -v error -y \
  -f lavfi -i "testsrc=size=640x360:rate=25:duration=10" \
  -f lavfi -i "sine=frequency=440:beep_factor=2:sample_rate=48000:duration=10" \
  -c:v libx264 -preset veryfast -profile:v baseline -pix_fmt yuv420p \
  -g 25 -keyint_min 25 -sc_threshold 0 -b:v 350k -maxrate 400k -bufsize 400k \
  -c:a aac -b:a 64k -ac 1 \
  -movflags frag_keyframe+empty_moov+default_base_moof \
  testcard.mp4
