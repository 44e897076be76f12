# Every example of the docs that talks to the server runs, as written.
#
# The SQL blocks (```sql) of README.md, docs/reference.md, docs/operations.md,
# docs/guarantees.md and docs/projections.md run in that order in one database, each block in a
# session of its own with search_path = "$user", event_store, public (the
# README's suggestion), so the reference's examples follow the README's
# tour.  A block's statements may fail only where the block says so: the
# sequence of "-- ERROR:  <message>" comments of a block must be the
# sequence of errors psql reports for it, message for message.  The Python
# blocks (```python) run with python3 (psycopg 3 as Debian 12 ships it,
# 3.1.7), with DSN naming that database; they must exit 0.  A block preceded
# by "<!-- docs-test: skip (why) -->" is not run (it needs a second server);
# the file counts them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use EsTest;

my @files = ('README.md', 'docs/reference.md', 'docs/operations.md', 'docs/guarantees.md', 'docs/projections.md');
my $node = es_new_node('docs', init => { allows_streaming => 'logical' });
$node->safe_psql('postgres', 'CREATE DATABASE docs');
my $dsn = 'host=' . $node->host . ' port=' . $node->port . ' dbname=docs';

# the fenced blocks of a markdown file: [ language, text, line, skipped ]
sub blocks_of
{
	my ($file) = @_;
	open(my $fh, '<', $file) or die "$file: $!";
	my (@blocks, $lang, $text, $start, $skip, $prev);
	while (my $line = <$fh>)
	{
		if (!defined $lang && $line =~ /^```(\w+)\s*$/)
		{
			($lang, $text, $start) = ($1, '', $.);
			$skip = defined $prev && $prev =~ /^<!-- docs-test: skip/;
			next;
		}
		if (defined $lang && $line =~ /^```\s*$/)
		{
			push @blocks, [ $lang, $text, $start, $skip ];
			undef $lang;
			next;
		}
		$text .= $line if defined $lang;
		$prev = $line if $line =~ /\S/;
	}
	return @blocks;
}

my %ran = (sql => 0, python => 0, skipped => 0);
for my $file (@files)
{
	for my $b (blocks_of($file))
	{
		my ($lang, $text, $line, $skip) = @$b;
		next unless $lang eq 'sql' || $lang eq 'python';
		my $where = "$file:$line";
		if ($skip)
		{
			$ran{skipped}++;
			next;
		}
		if ($lang eq 'sql')
		{
			my @want = map { /^\s*-- ERROR:  (.*)$/ ? ($1) : () } split /\n/, $text;
			my ($stdout, $stderr);
			IPC::Run::run(
				[ 'psql', '-X', '-h', $node->host, '-p', $node->port, '-d', 'docs',
					'-v', 'ON_ERROR_STOP=0' ],
				'<', \("SET search_path = \"\$user\", event_store, public;\n" . $text),
				'>', \$stdout, '2>', \$stderr);
			my @got = map { /ERROR:  (.*)$/ ? ($1) : () } split /\n/, $stderr;
			is(join("\n", @got), join("\n", @want),
				"$where: the SQL example runs, failing exactly where it says ("
				  . scalar(@want) . ' errors)')
			  or diag($stderr);
			$ran{sql}++;
		}
		else
		{
			my ($stdout, $stderr);
			my $ok = IPC::Run::run([ '/usr/bin/python3', '-' ], '<', \$text, '>', \$stdout, '2>', \$stderr,
				init => sub { $ENV{DSN} = $dsn });
			ok($ok, "$where: the Python example runs") or diag($stderr);
			note("$where: $stdout") if $stdout ne '';
			$ran{python}++;
			if ($text =~ /def follow\(/)
			{
				my ($printed) = $stdout =~ /^checkpoint (\d+)$/m;
				my $saved = $node->safe_psql('docs',
					q{SELECT event_store.es_checkpoint_get('mailer')});
				ok(defined $printed && $printed > 0 && $printed eq $saved,
					"$where: the listener read the feed and saved its checkpoint ($saved)");
			}
		}
	}
}
cmp_ok($ran{sql}, '>=', 12, "at least 12 SQL examples ran ($ran{sql})");
cmp_ok($ran{python}, '>=', 2, "at least 2 Python examples ran ($ran{python})");
note("skipped (a second server): $ran{skipped}");
es_check_log($node, '018');
$node->stop;
done_testing();
