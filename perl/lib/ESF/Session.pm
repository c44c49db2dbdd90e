package ESF::Session;

# Reads (and issues) mod_esf's ESF_SESSION cookie and the session's cart
# from Perl: mod_perl handlers, ModPerl::Registry or plain CGI scripts that
# share a site with mod_esf while it is migrated URL by URL (INSTALL.md,
# "Migrating from mod_perl"). Documentation at the end (perldoc).

use strict;
use warnings;

use Digest::SHA qw(hmac_sha1_hex);
use Exporter qw(import);

our $VERSION = '0.1';

our @EXPORT_OK = qw(
    read_secret cookie_value verify_cookie csrf_token new_session_id
    cookie_from_header set_cookie_header connect_db load_cart load_session
    request_session start_session secret_for dbh_for
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

use constant COOKIE_NAME      => 'ESF_SESSION';
use constant MIN_SECRET_BYTES => 16;

# Secrets read so far, by absolute file name; filled in the parent by
# post_config (before httpd drops privileges), inherited by the children.
my %SECRETS;

# One database handle per child process and connection string.
my %DBH;

# ---------------------------------------------------------------------------
# Plain functions: no Apache needed.

sub read_secret {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "EsfSessionSecret $file: expected a readable file holding the secret ($!)\n";
    my $secret = do { local $/; <$fh> };
    close $fh;
    $secret = '' unless defined $secret;
    $secret =~ s/[\r\n]+\z//;
    my $n = length $secret;
    die "EsfSessionSecret $file: expected a file holding a secret of at least "
        . MIN_SECRET_BYTES . " bytes (it has $n)\n"
        if $n < MIN_SECRET_BYTES;
    return $secret;
}

sub cookie_value {
    my ($secret, $id) = @_;
    return $id . '.' . hmac_sha1_hex($id, $secret);
}

sub verify_cookie {
    my ($secret, $value) = @_;
    return undef unless defined $value && defined $secret;
    my ($id, $mac) = $value =~ /\A([0-9a-f]{32})\.([0-9a-f]{40})\z/ or return undef;
    return _same_hex($mac, hmac_sha1_hex($id, $secret)) ? $id : undef;
}

sub csrf_token {
    my ($secret, $id) = @_;
    return hmac_sha1_hex("csrf:$id", $secret);
}

sub new_session_id {
    open my $fh, '<:raw', '/dev/urandom' or die "ESF::Session: /dev/urandom: $!\n";
    my $got = read $fh, my $bytes, 16;
    close $fh;
    die "ESF::Session: short read from /dev/urandom\n" unless defined $got && $got == 16;
    return unpack 'H*', $bytes;
}

sub cookie_from_header {
    my ($header) = @_;
    return undef unless defined $header;
    for my $pair (split /;/, $header) {
        my ($name, $value) = $pair =~ /\A\s*([^=]*?)\s*=(.*)\z/s or next;
        next unless $name eq COOKIE_NAME;
        $value =~ s/\A\s+|\s+\z//g;
        $value =~ s/\A"|"\z//g;
        return $value;
    }
    return undef;
}

sub set_cookie_header {
    my ($value) = @_;
    return COOKIE_NAME . "=$value; Path=/; HttpOnly; SameSite=Lax";
}

sub connect_db {
    my ($conninfo) = @_;
    require DBI;
    return DBI->connect("dbi:Pg:$conninfo", undef, undef,
        { RaiseError => 1, PrintError => 0, AutoCommit => 1, pg_enable_utf8 => 1 });
}

sub load_cart {
    my ($dbh, $id) = @_;
    return $dbh->selectall_arrayref(
        'SELECT c.product_id, p.name, c.qty, p.price_cents AS unit_cents
           FROM cart_lines c JOIN products p ON p.id = c.product_id
          WHERE c.session_id = ?
          ORDER BY c.added_at, c.product_id',
        { Slice => {} }, $id);
}

sub load_session {
    my ($dbh, $id) = @_;
    my $row = $dbh->selectrow_hashref(
        'SELECT id, cart_version, extract(epoch FROM created_at)::bigint AS created,
                extract(epoch FROM updated_at)::bigint AS updated
           FROM sessions WHERE id = ?', undef, $id) or return undef;
    $row->{lines} = load_cart($dbh, $id);
    my $total = 0;
    $total += $_->{qty} * $_->{unit_cents} for @{ $row->{lines} };
    $row->{total_cents} = $total;
    return $row;
}

# Compares two strings of equal length without stopping at the first
# difference, so the time taken does not tell how much of a MAC was right.
sub _same_hex {
    my ($a, $b) = @_;
    return 0 unless length $a == length $b;
    my $diff = 0;
    $diff |= ord(substr $a, $_, 1) ^ ord(substr $b, $_, 1) for 0 .. length($a) - 1;
    return $diff == 0;
}

# ---------------------------------------------------------------------------
# mod_perl: PerlSetVar EsfSessionSecret / EsfDatabase.

sub post_config {
    my ($conf_pool, $log_pool, $temp_pool, $s) = @_;
    require Apache2::ServerRec;
    require Apache2::ServerUtil;
    require Apache2::Const;
    Apache2::Const->import(-compile => 'OK');
    for (my $vs = $s; $vs; $vs = $vs->next) {
        my $file = $vs->dir_config('EsfSessionSecret');
        next unless defined $file && length $file;
        my $path = Apache2::ServerUtil::server_root_relative($conf_pool, $file);
        $SECRETS{$path} = read_secret($path);   # dies: httpd does not start
    }
    return Apache2::Const::OK();
}

sub secret_for {
    my ($r) = @_;
    require Apache2::RequestUtil;
    require Apache2::ServerUtil;
    my $file = $r->dir_config('EsfSessionSecret');
    die "ESF::Session: no PerlSetVar EsfSessionSecret for " . $r->uri . "\n"
        unless defined $file && length $file;
    my $path = Apache2::ServerUtil::server_root_relative($r->pool, $file);
    return $SECRETS{$path} //= read_secret($path);
}

sub request_session {
    my ($r) = @_;
    require APR::Table;
    require Apache2::RequestRec;
    require Apache2::Log;
    my $value = cookie_from_header(scalar $r->headers_in->get('Cookie'));
    my ($id, $state);
    if (!defined $value) {
        $state = 'absent';
    } elsif (defined($id = verify_cookie(secret_for($r), $value))) {
        $state = 'valid';
    } else {
        $state = 'tampered';
        require Apache2::Connection;
        $r->log->warn('ESF::Session: ignored an ESF_SESSION cookie that does not verify, from '
            . $r->connection->client_ip);
    }
    return wantarray ? ($id, $state) : $id;
}

sub start_session {
    my ($r) = @_;
    require APR::Table;
    require Apache2::RequestRec;
    my $id = new_session_id();
    $r->err_headers_out->add('Set-Cookie' => set_cookie_header(cookie_value(secret_for($r), $id)));
    $r->err_headers_out->set('Cache-Control' => 'private, no-store');
    return $id;
}

sub dbh_for {
    my ($r) = @_;
    require Apache2::RequestUtil;
    my $conninfo = $r->dir_config('EsfDatabase');
    die "ESF::Session: no PerlSetVar EsfDatabase for " . $r->uri . "\n"
        unless defined $conninfo && length $conninfo;
    my $cached = $DBH{$conninfo};
    if ($cached && $cached->{pid} == $$ && $cached->{dbh}->ping) {
        return $cached->{dbh};
    }
    # A handle from another process (a fork) is left alone, never closed.
    $cached->{dbh}{InactiveDestroy} = 1 if $cached && $cached->{pid} != $$;
    my $dbh = connect_db($conninfo);
    $DBH{$conninfo} = { pid => $$, dbh => $dbh };
    return $dbh;
}

1;

__END__

=head1 NAME

ESF::Session - mod_esf's session cookie and cart, from Perl

=head1 SYNOPSIS

In httpd.conf, beside mod_esf (C<EsfSessionSecret> and C<EsfDatabase>
name the same file and database as mod_esf's directives):

    LoadModule perl_module /usr/lib/apache2/modules/mod_perl.so
    PerlSwitches -I/srv/mod_esf/perl/lib
    PerlSetVar EsfSessionSecret /etc/esf/session.secret
    PerlSetVar EsfDatabase "host=/run/postgresql dbname=store user=www-data"
    PerlModule ESF::Session
    PerlPostConfigHandler ESF::Session::post_config

    <Location /legacy/cart-summary>
        SetHandler modperl
        PerlResponseHandler ESF::Example::CartSummary
    </Location>

In a mod_perl handler:

    use ESF::Session qw(request_session start_session dbh_for load_session);

    my ($id, $state) = request_session($r);   # 'valid', 'absent' or 'tampered'
    return Apache2::Const::FORBIDDEN if $state eq 'tampered';
    $id //= start_session($r);                # Set-Cookie that mod_esf accepts
    my $session = load_session(dbh_for($r), $id);
    for my $line (@{ $session ? $session->{lines} : [] }) {
        printf "%d x %s at %d cents\n", $line->{qty}, $line->{name}, $line->{unit_cents};
    }

Anywhere else (a CGI script, a cron job), without Apache:

    use ESF::Session qw(:all);

    my $secret = read_secret('/etc/esf/session.secret');
    my $id = verify_cookie($secret, cookie_from_header($ENV{HTTP_COOKIE}));
    my $cart = $id ? load_cart(connect_db('dbname=store'), $id) : [];

=head1 DESCRIPTION

mod_esf gives each visitor a cookie C<ESF_SESSION=E<lt>idE<gt>.E<lt>macE<gt>>:
C<id> is 32 lowercase hex digits and C<mac> the lowercase hex HMAC-SHA1 of
the id under the site's secret (the file named by mod_esf's
C<EsfSessionSecret>). The session and its cart live in PostgreSQL
(tables C<sessions> and C<cart_lines>, keyed by the id), written through
by mod_esf on every change. This module computes the same MAC with the same
secret, so Perl code running in the same httpd (or anywhere that can read
the secret) recognises mod_esf's sessions, reads their carts, and can start
sessions that mod_esf accepts in turn.

It needs only Debian-packaged Perl: L<Digest::SHA> (core), L<DBI> and
L<DBD::Pg> (C<libdbd-pg-perl>) for the database functions, and mod_perl
(C<libapache2-mod-perl2>) for the request functions. The plain functions
load no Apache module and work under CGI too.

A cookie is either I<valid> (its MAC verifies: the id is the session) or
not, in which case it must be treated as no cookie at all, exactly as
mod_esf does: a forged or stale cookie never names a session.

=head1 CONFIGURATION (mod_perl)

=over

=item PerlSetVar EsfSessionSecret FILE

The file mod_esf's C<EsfSessionSecret> names; relative names are relative
to C<ServerRoot>, like mod_esf's. The secret is the file's contents without
trailing newlines, at least 16 bytes (C<scripts/make-secret.sh> writes
one).

Set it at server or virtual-host level and add
C<PerlPostConfigHandler ESF::Session::post_config>: the file is then read
once by the parent process as root, before httpd drops privileges, so it
can stay readable by root only, and a file that is missing or too short
stops httpd from starting, as it does with mod_esf. A graceful restart
reads it again. A value set inside a C<E<lt>LocationE<gt>> is read by the
child on first use instead, and must then be readable by httpd's C<User>.

=item PerlSetVar EsfDatabase "CONNINFO"

The libpq connection string of the store's database (mod_esf's
C<EsfDatabase>): C<host=/run/postgresql dbname=store user=www-data>. Each
child opens one connection on first use and keeps it.

=back

=head1 FUNCTIONS

Nothing is exported by default; C<:all> exports everything below.

=head2 Plain functions

=over

=item read_secret($file)

The secret in C<$file>, read as mod_esf reads it (trailing CR/LF removed).
Dies if the file cannot be read or holds fewer than 16 bytes; the message
never quotes the contents.

=item verify_cookie($secret, $value)

The session id if C<$value> (a cookie value, C<id.mac>) is well formed and
its MAC verifies under C<$secret>, else C<undef>. The MAC comparison does
not stop at the first differing character.

=item cookie_value($secret, $id)

The cookie value C<id.mac> for session C<$id>.

=item new_session_id()

A fresh session id: 16 bytes of F</dev/urandom> as 32 lowercase hex digits.

=item set_cookie_header($value)

The C<Set-Cookie> header value mod_esf sends:
C<ESF_SESSION=$value; Path=/; HttpOnly; SameSite=Lax>.

=item cookie_from_header($cookie_header)

The value of C<ESF_SESSION> in a C<Cookie> request header (or
C<$ENV{HTTP_COOKIE}>), C<undef> if there is none. Not verified.

=item csrf_token($secret, $id)

The session's csrf token, as mod_esf puts in its cart forms (the
HMAC-SHA1 of C<csrf:$id>). A Perl page that posts to mod_esf's
C<cart/update> or C<checkout> sends it as the C<csrf> field.

=item connect_db($conninfo)

A new L<DBI> handle for a libpq connection string (C<RaiseError> on, UTF-8
strings).

=item load_cart($dbh, $id)

The session's cart lines, oldest first, as an array reference of hashes
with C<product_id>, C<name>, C<qty> and C<unit_cents> (the product's
current price). Empty when the session has no cart.

=item load_session($dbh, $id)

The session as a hash reference (C<id>, C<cart_version>, C<created>,
C<updated> in epoch seconds, C<lines> as from C<load_cart>, C<total_cents>),
or C<undef> when the database has no such session. mod_esf records a
session when its cart first changes, so a valid cookie without a row is a
session with an empty cart.

=back

=head2 Request functions (mod_perl)

=over

=item request_session($r)

In list context C<($id, $state)>: C<$state> is C<valid> (and C<$id> the
session id), C<absent> or C<tampered> (C<$id> undefined; logged at
C<warn>, like mod_esf). In scalar context the id or C<undef>.

=item start_session($r)

Starts a new session: adds its C<Set-Cookie> (and
C<Cache-Control: private, no-store>) to the response's error headers,
which are sent with every status, and returns the new id. mod_esf accepts
the cookie as its own. No database row is written; mod_esf writes one when
the cart first changes.

=item secret_for($r)

The secret for the request's C<PerlSetVar EsfSessionSecret>.

=item dbh_for($r)

This child's database handle for the request's C<PerlSetVar EsfDatabase>,
connected on first use and again if the connection was lost.

=item post_config

The C<PerlPostConfigHandler> that reads every server's (and virtual
host's) C<EsfSessionSecret> at startup; see L</CONFIGURATION (mod_perl)>.

=back

=head1 WRITING TO THE CART

Change carts through mod_esf (C<POST /store/cart/add>,
C<cart/update>, with C<csrf_token>), not with SQL from Perl: mod_esf
keeps each session in its object cache for up to five minutes and would
not see the change. A writer that must go to the database directly does it
as mod_esf does (in one transaction: insert the C<sessions> row if missing,
change C<cart_lines>, C<UPDATE sessions SET cart_version = cart_version + 1,
updated_at = now()>) and then runs
C<SELECT esf_publish_cache_change('session:' || $id)> in the same
transaction (F<docs/DATA.md>), which drops the cached copy on every app
server.

=head1 SEE ALSO

F<INSTALL.md> ("Migrating from mod_perl"), L<ESF::Example::CartSummary>,
F<crates/esf-core/src/session.rs> (the cookie's reference implementation).

=cut
