// Package channelid is the one rule for a channel's id, shared by the
// tracker (which refuses a bad id in publish and join) and the command
// line (which refuses it before connecting). Channel ids go into URLs,
// metric labels and logs, so they are kept to URL-safe characters. It
// imports nothing of coopcast's.
package channelid
