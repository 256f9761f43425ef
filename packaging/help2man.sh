#!/bin/sh
# help2man.sh PGPUSHD DATADIR SYSCONFDIR — pgpushd(8) in roff on stdout,
# made from `PGPUSHD --help` (dispatcher/cli.c's tables), so the manual
# page says exactly what --help says.  Only the NAME, FILES and SEE ALSO
# sections are written here.
set -eu
bin=$1 datadir=${2:-/usr/local/share/pgpush} sysconfdir=${3:-/etc}

version=$("$bin" --version | awk '{ print $2 }')
"$bin" --help | awk -v version="$version" -v datadir="$datadir" \
	-v sysconfdir="$sysconfdir" '
function esc(s) {
	gsub(/\\/, "\\e", s)
	gsub(/-/, "\\-", s)
	if (s ~ /^[.\x27]/) s = "\\&" s
	return s
}
function flush() {
	if (text != "") print esc(text)
	text = ""
}
NR == 1 {
	print ".TH PGPUSHD 8 \"\" \"pgpush " version "\" \"System Administration\""
	print ".SH NAME"
	print "pgpushd \\- the pgpush push\\-notification dispatcher"
	print ".SH SYNOPSIS"
	print ".B pgpushd"
	print "[\\fIFLAGS\\fR] [\\fICOMMAND\\fR]"
	print ".SH DESCRIPTION"
	section = "desc"
	next
}
/^Commands:/ { flush(); print ".SH COMMANDS"; section = "item"; next }
/^Flags/ {
	flush()
	print ".SH OPTIONS"
	sub(/^Flags */, ""); sub(/:$/, "")
	gsub(/[()]/, "")
	print esc("Flags go " $0 ".")
	section = "item"
	next
}
/^Exit status:/ {
	flush()
	print ".SH EXIT STATUS"
	sub(/^Exit status: */, "")
	print esc($0)
	section = "exit"
	next
}
/^$/ { flush(); if (section == "desc") print ".PP"; next }
# An entry: indented less than its text (28 columns); a long left column
# stands alone on its line, the text follows on the next.
section == "item" && match($0, /^ +/) && RLENGTH < 20 {
	flush()
	s = substr($0, RLENGTH + 1)
	if (match(s, /  +/)) {
		left = substr(s, 1, RSTART - 1)
		rest = substr(s, RSTART + RLENGTH)
	} else {
		left = s
		rest = ""
	}
	print ".TP"
	n = split(left, w, " ")
	line = ""
	for (i = 1; i <= n; i++) {
		if (w[i] ~ /^-/)
			line = line (i > 1 ? " " : "") "\\fB" esc(w[i]) "\\fR"
		else if (i == 1)
			line = "\\fB" esc(w[i]) "\\fR"
		else
			line = line " \\fI" esc(w[i]) "\\fR"
	}
	print line
	sub(/^ +/, "", rest)
	text = rest
	next
}
{
	s = $0
	sub(/^ +/, "", s)
	text = text (text == "" ? "" : " ") s
}
END {
	flush()
	print ".SH ENVIRONMENT"
	print "Each flag that names an environment variable above takes its value"
	print "from it when the flag is absent; the libpq variables (PGHOST,"
	print "PGPORT, PGDATABASE, PGUSER, PGPASSWORD, ...) apply without \\fB\\-\\-db\\fR."
	print ".SH FILES"
	print ".TP"
	print ".I " esc(sysconfdir "/default/pgpushd")
	print "Environment for the systemd unit \\fBpgpushd.service\\fR."
	print ".TP"
	print ".I " esc(datadir "/migrations/")
	print "The schema migrations \\fBpgpushd migrate\\fR applies."
	print ".TP"
	print ".I " esc(datadir "/admin-sql/")
	print "Scripts for admins: \\fBpsql \\-v app=NAME \\-f " \
		esc(datadir "/admin-sql/ban_app.sql") "\\fR and others."
	print ".SH SEE ALSO"
	print "\\fBpsql\\fR(1), \\fBsystemd.exec\\fR(5); the manual in the"
	print "pgpush source tree: README.md, docs/sql\\-api.md, docs/operations.md."
}'
