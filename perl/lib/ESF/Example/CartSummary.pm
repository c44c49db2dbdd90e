package ESF::Example::CartSummary;

# A legacy mod_perl page reading the cart mod_esf keeps: the session id,
# each line and the total, as text/plain. Documentation at the end.

use strict;
use warnings;

use Apache2::RequestRec ();
use Apache2::RequestIO ();
use Apache2::Const -compile => qw(OK HTTP_FORBIDDEN);
use Encode ();

use ESF::Session qw(request_session start_session secret_for csrf_token dbh_for load_session);

sub handler {
    my ($r) = @_;
    my ($id, $state) = request_session($r);
    if ($state eq 'tampered') {
        $r->status(Apache2::Const::HTTP_FORBIDDEN);
        $r->content_type('text/plain; charset=utf-8');
        $r->print("forbidden: the ESF_SESSION cookie does not verify\n");
        return Apache2::Const::OK;
    }
    my $started = 0;
    if ($state eq 'absent') {
        if (($r->args // '') !~ /(?:^|&)start=1(?:&|$)/) {
            $r->content_type('text/plain; charset=utf-8');
            $r->headers_out->set('Cache-Control' => 'private, no-store');
            $r->print("no session\n");
            return Apache2::Const::OK;
        }
        $id = start_session($r);
        $started = 1;
    }
    my $session = load_session(dbh_for($r), $id);
    my @lines = $session ? @{ $session->{lines} } : ();
    my $out = "session $id\n";
    $out .= "started here\n" if $started;
    $out .= "csrf " . csrf_token(secret_for($r), $id) . "\n";
    $out .= "line $_->{product_id} qty $_->{qty} unit_cents $_->{unit_cents} name $_->{name}\n" for @lines;
    $out .= 'total_cents ' . ($session ? $session->{total_cents} : 0) . "\n";
    $r->content_type('text/plain; charset=utf-8');
    $r->headers_out->set('Cache-Control' => 'private, no-store');
    $r->print(Encode::encode_utf8($out));
    return Apache2::Const::OK;
}

1;

__END__

=head1 NAME

ESF::Example::CartSummary - a mod_perl page that reads mod_esf's cart

=head1 SYNOPSIS

    PerlSwitches -I/srv/mod_esf/perl/lib
    PerlSetVar EsfSessionSecret /etc/esf/session.secret
    PerlSetVar EsfDatabase "host=/run/postgresql dbname=store"
    PerlPostConfigHandler ESF::Session::post_config
    <Location /legacy/cart-summary>
        SetHandler modperl
        PerlResponseHandler ESF::Example::CartSummary
    </Location>

=head1 DESCRIPTION

The pattern of a page that stays on mod_perl while the store moves to
mod_esf: it verifies the visitor's C<ESF_SESSION> cookie with
L<ESF::Session> and reads the session's cart from PostgreSQL. The answer is
C<text/plain>, one fact a line:

    session 0f1e...        the session id (from a cookie that verifies)
    csrf 9a8b...           the token mod_esf's cart forms would carry
    line 5 qty 3 unit_cents 1299 name Wooden Train
    total_cents 3897

A cookie that does not verify gets C<403>. Without a cookie the page says
C<no session>, unless the query string has C<start=1>: then it starts a
session (C<Set-Cookie>, and the line C<started here>), which mod_esf's own
pages accept.

=cut
