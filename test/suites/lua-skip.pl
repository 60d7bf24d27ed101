#!/usr/bin/perl
# lua-skip.pl IN OUT: copies a test-nginx .t file, adding test-nginx's
# "--- SKIP" section to every block whose configuration uses a directive of
# a module that Debian's nginx (with ndk and lua loaded) and ngxsockify do
# not both have: echo, memc, drizzle, postgres, rds, redis, set-misc,
# headers-more, array-var, ... (see @modules). Such a block can only show
# that a server does not start; skipped, it runs on neither server.
# Test::Base leaves SKIP blocks out of blocks(), so the plan shrinks with
# them, and the "=== TEST N:" names stay as they are: results stay
# comparable with the file's own numbering.
#
# Prints "SKIPPED N M" (the blocks it marked, of M) on stdout, and each skipped
# block with the module that caused it on stderr.
use strict;
use warnings;

my ($in, $out) = @ARGV;
die "usage: lua-skip.pl IN OUT\n" unless defined $out;

# [module, directive name pattern]. set_* of set-misc leaves out the
# directives of lua (set_by_lua*) and of nginx's realip (set_real_ip_from).
my @modules = (
	[echo             => qr/^echo(?:_\w+)?$/],
	[memc             => qr/^memc_\w+$/],
	[drizzle          => qr/^drizzle_\w+$/],
	[postgres         => qr/^postgres_\w+$/],
	[rds              => qr/^rds_\w+$/],
	[redis2           => qr/^redis2_\w+$/],
	[redis            => qr/^redis_\w+$/],
	['set-misc'       => qr/^(?:set_(?!by_lua|real_ip_from)\w+|upstream_list)$/],
	['headers-more'   => qr/^more_\w+$/],
	['array-var'      => qr/^array_\w+$/],
	[srcache          => qr/^srcache_\w+$/],
	[xss              => qr/^xss_\w+$/],
	[eval             => qr/^eval(?:_\w+)?$/],
	['encrypted-session' => qr/^encrypted_session_\w+$/],
	[iconv            => qr/^iconv_\w+$/],
	['form-input'     => qr/^set_form_input\w*$/],
	# Debian builds these as dynamic modules the runner does not load.
	[image_filter     => qr/^image_filter\w*$/],
	[geoip            => qr/^geoip_\w+$/],
	[perl             => qr/^perl(?:_\w+)?$/],
	[xslt             => qr/^xslt_\w+$/],
);

# LUA_SKIP_KEEP (names of @modules, comma-separated) keeps those modules'
# blocks: for a suite of one of them (headers-more's own t/, with the
# module loaded in nginx through LUA_LOAD_MODULES).
my %keep = map { $_ => 1 } split /,/, ($ENV{LUA_SKIP_KEEP} // '');
@modules = grep { !$keep{$_->[0]} } @modules;

# Sections that become nginx configuration.
my %conf_section = map { $_ => 1 } qw(config http_config main_config server_config);
# Sections that need a module neither side loads (stream needs ngx_stream).
my %module_section = (stream_config => 'stream', stream_server_config => 'stream',
	stream_request => 'stream', stream_response => 'stream');

open my $fh, '<', $in or die "lua-skip.pl: $in: $!\n";
my $text = do { local $/; <$fh> };
close $fh;

# test-nginx's data is everything after __DATA__; blocks start at "=== ".
my ($head, $data) = $text =~ /\A(.*?^__DATA__\n)(.*)\z/ms
	or do { write_out($text); print "SKIPPED 0 0\n"; exit 0 };
my @parts = split /^(?==== )/m, $data;
my ($skipped, $blocks) = (0, 0);
for my $part (@parts) {
	next unless $part =~ /^=== (.*)/;
	my $name = $1;
	$blocks++;
	next if $part =~ /^--- SKIP\s*$/m;
	my $why = needs_missing_module($part);
	next unless $why;
	# The SKIP section goes right after the "=== " line.
	$part =~ s/\A(=== [^\n]*\n)/$1--- SKIP\n/;
	$skipped++;
	print STDERR "$in: $name: $why\n";
}
write_out($head . join('', @parts));
print "SKIPPED $skipped $blocks\n";

sub write_out {
	open my $o, '>', $out or die "lua-skip.pl: $out: $!\n";
	print $o $_[0];
	close $o or die "lua-skip.pl: $out: $!\n";
}

# needs_missing_module BLOCK: the module (and directive) that makes the
# block unusable, or undef.
sub needs_missing_module {
	my ($block) = @_;
	# Sections: "--- name" (or "--- name: value") up to the next one.
	my @sections = split /^(?=--- \w)/m, $block;
	for my $s (@sections) {
		next unless $s =~ /^--- (\w+)/;
		my $sec = $1;
		return "$module_section{$sec} ($sec)" if $module_section{$sec};
		next unless $conf_section{$sec};
		(my $body = $s) =~ s/\A[^\n]*\n?//;
		for my $d (directives($body)) {
			for my $m (@modules) {
				return "$m->[0] ($d)" if $d =~ $m->[1];
			}
		}
	}
	return undef;
}

# directives CONF: the words that start a statement in CONF: the first
# word of a line or the word after "{", "}" or ";". Lua code inside a
# *_by_lua block or string yields words too, but no Lua line starts with a
# directive name of the modules above.
sub directives {
	my ($conf) = @_;
	my @d;
	while ($conf =~ /(?:^|[;{}])[ \t]*([a-z][a-z0-9_]*)(?=[ \t;{]|$)/mg) {
		push @d, $1;
	}
	return @d;
}
