/* transport.c - the transport's part of an orderly close (transport.h): a WebSocket Close frame
 * (ws_filter.c) and a TLS close_notify, in that order for WebSocket over TLS (RFC 6455 §5.5.1,
 * §7.1.1: the Close frame is the last data frame; RFC 8446 §6.1: close_notify ends the TLS
 * stream, so a peer can tell the end of the data from a cut connection). */
#include "transport.h"

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ws_filter.h"
#include "ws_frame.h"

static uint16_t relay_ws_status(enum relay_end why)
{
	switch (why) {
	case RELAY_END_SHUTDOWN:
		return WS_CLOSE_GOING_AWAY;
	case RELAY_END_PROTOCOL:
		return WS_CLOSE_PROTOCOL;
	default:
		return WS_CLOSE_NORMAL;
	}
}

/* Sends close_notify on a TLS connection whose handshake is done (one record, written to the
 * socket by SSL_shutdown itself; a full socket buffer loses it, as any best-effort goodbye). We
 * do not wait for the peer's: the socket is half-closed or freed next. */
static void relay_tls_finish(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	if (!ssl || !SSL_is_init_finished(ssl) || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		return;
	(void)SSL_shutdown(ssl);
	ERR_clear_error(); /* a failure here must not be reported for another connection */
}

enum relay_finish relay_transport_finish(struct bufferevent *bev, enum relay_end why)
{
	struct bufferevent *under;

	if (!bev)
		return RELAY_FINISH_DONE;
	under = bufferevent_get_underlying(bev);
	if (under) {
		if (ws_filter_close(bev, relay_ws_status(why)))
			return RELAY_FINISH_PENDING;
		bev = under;
	}
	relay_tls_finish(bev);
	return RELAY_FINISH_DONE;
}
