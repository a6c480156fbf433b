# kvd.conf(5), generated from config/kvd.conf (the Makefile runs it), so the manual page and the
# shipped default file cannot drift apart:
#   awk -v version=0.1.0 -v date=2026-11-30 -f packaging/man/kvd.conf.5.awk config/kvd.conf
#
# What it reads: the comment block before the first [section] is the description; in a
# section, a block of comment lines ("# text") followed by commented-out settings
# ("# name = default") becomes one entry: the settings as its tag, the text as its body.
# A block without settings is a paragraph of its own.

# Text for groff: backslashes as \e, a leading "." or "'" guarded, and the hyphens that start a
# word (options such as --check-config, negative numbers) as \- so they can be copied; the
# hyphens inside words (built-in) stay hyphens.
function roff(text,    out, i, c, previous) {
	gsub(/\\/, "\\e", text)
	out = ""
	previous = " "
	for (i = 1; i <= length(text); i++) {
		c = substr(text, i, 1)
		if (c == "-" && (previous == " " || previous == "(" || previous == "-" || previous == "\t")) out = out "\\-"
		else out = out c
		previous = c
	}
	if (out ~ /^[.']/) out = "\\&" out
	return out
}

# Ends the block read so far: an entry (.TP tag, .TQ for further settings) or a paragraph.
function flush(    i) {
	if (nsettings > 0) {
		print ".TP"
		for (i = 1; i <= nsettings; i++) {
			if (i > 1) print ".TQ"
			print settings[i]
		}
		for (i = 1; i <= ntext; i++) print text[i]
	} else if (ntext > 0) {
		print ".PP"
		for (i = 1; i <= ntext; i++) print text[i]
	}
	nsettings = 0
	ntext = 0
}

BEGIN {
	if (version == "") version = "unknown"
	print ".\\\" Generated from config/kvd.conf by packaging/man/kvd.conf.5.awk: edit those, not this file."
	print ".TH KVD.CONF 5 \"" date "\" \"kvd " version "\" \"File Formats\""
	print ".SH NAME"
	print "kvd.conf \\- configuration of kvd, the key/value HTTP server over Redis"
	print ".SH SYNOPSIS"
	print ".I /etc/kvd.conf"
	print ".br"
	print ".I /etc/kvd/NAME.conf"
	print ".SH DESCRIPTION"
	print ".B kvd"
	print "reads this INI file at start and on SIGHUP"
	print "(\\fBsystemctl reload kvd\\fR);"
	print ".B kvload"
	print "reads its [redis] section to load data where kvd looks for it."
	print "The settings below are those of the default file, as shipped, each with its built\\-in"
	print "default."
	section = ""
}

# The first line names the file: already said in NAME.
NR == 1 && /^# \/etc\/kvd\.conf:/ { next }

/^\[[a-z]+\][ \t]*$/ {
	flush()
	if (section == "") print ".SH SETTINGS"
	section = $0
	sub(/[ \t]*$/, "", section)
	print ".SS \"" section "\""
	next
}

# A commented-out setting: "# name = value" (the value may be empty).
/^# ?[a-z_]+ =( .*)?$/ {
	if (section != "") {
		line = $0
		sub(/^# ?/, "", line)
		name = line
		sub(/ =.*$/, "", name)
		value = line
		sub(/^[a-z_]+ =[ ]?/, "", value)
		if (value == "") settings[++nsettings] = "\\fB" name "\\fR = \\fI(empty)\\fR"
		else settings[++nsettings] = "\\fB" name "\\fR = " roff(value)
		next
	}
}

/^#[ \t]*$/ || /^[ \t]*$/ {
	# An empty comment line inside a description starts a new paragraph; a blank line ends a block.
	if (/^#/ && section == "" && ntext > 0) { flush() }
	else if (!/^#/) flush()
	next
}

/^#/ {
	line = $0
	sub(/^# ?/, "", line)
	if (nsettings > 0) flush()
	# Two spaces set off a command in the prose ("the server:  kvd --check-config ..."):
	# such a line starts a line of its own.
	if (line ~ /[^ ]  +[^ ]/) {
		gsub(/  +/, " ", line)
		text[++ntext] = ".br"
		text[++ntext] = roff(line)
	} else {
		text[++ntext] = roff(line)
	}
	next
}

{
	print "packaging/man/kvd.conf.5.awk: " FILENAME ":" NR ": a line that is not a comment: " $0 > "/dev/stderr"
	failed = 1
	exit 1
}

END {
	if (failed) exit 1
	flush()
	print ".SH FILES"
	print ".TP"
	print ".I /etc/kvd.conf"
	print "The configuration of"
	print ".BR kvd.service ;"
	print "a conffile of the package: an edited file is kept on upgrades."
	print ".TP"
	print ".I /etc/kvd/NAME.conf"
	print "The configuration of the instance"
	print ".BR kvd@NAME.service ,"
	print "same syntax; give each instance its own [http] port."
	print ".TP"
	print ".I /usr/share/doc/kvd/systemd.md.gz"
	print "Running kvd under systemd: reload, secrets, socket activation."
	print ".SH SEE ALSO"
	print ".BR kvd (8),"
	print ".BR kvload (1),"
	print ".BR systemd.exec (5)"
}
