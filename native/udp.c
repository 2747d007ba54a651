/*
 * coapfw's optional native UDP socket (Linux), for src/transport/native-udp.ts.
 *
 * node:dgram spends more per datagram than a whole CoAP exchange costs in C:
 * a Buffer, an rinfo object and its address string per received datagram, a
 * SendWrap and an address parse per send. This socket receives with
 * recvmmsg(2) into one buffer that JavaScript owns (up to BATCH datagrams per
 * wake-up, one call into JavaScript for all of them), names each sender by a
 * small number (its address string is made once per peer, not per datagram),
 * and sends with sendto(2).
 *
 * What a datagram transport must still do, it does: a send the kernel cannot
 * take now (EAGAIN) waits in a bounded queue until the socket is writable; a
 * connected socket reports ICMP errors; a datagram larger than a slot is
 * dropped and counted, never delivered cut short.
 *
 * Built by node-gyp against the installed Node's headers; when it is absent
 * the JavaScript transport on node:dgram is used instead.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 16            /* datagrams per recvmmsg */
#define SLOT 8192           /* bytes per receive slot: larger datagrams are dropped */
#define MAX_PEERS 4096      /* peer numbers before the table starts over */
#define TABLE (MAX_PEERS * 2)
#define MAX_QUEUED 1024     /* datagrams waiting for a writable socket */
#define ROUNDS 4            /* recvmmsg batches per wake-up before yielding to the loop */

typedef struct {
  uint8_t addr[16]; /* IPv6, or IPv4-mapped */
  uint16_t port;
  uint32_t scope; /* IPv6 zone (link-local peers), else 0 */
  int32_t id; /* -1: empty */
} peer_entry;

typedef struct queued {
  struct queued *next;
  struct sockaddr_in6 to;
  socklen_t tolen;
  size_t len;
  uint8_t data[];
} queued;

typedef struct {
  uv_poll_t poll;
  napi_env env;
  int fd;
  int v6;
  int connected;
  int events;
  int closed;       /* close() was called */
  int handle_done;  /* libuv has released the poll handle */
  int finalized;    /* the JavaScript object is gone */
  napi_ref on_recv;
  napi_ref on_error;
  napi_ref data_ref;
  napi_ref meta_ref;
  napi_async_context async;
  uint8_t *data;    /* BATCH * SLOT bytes, JavaScript's ArrayBuffer */
  int32_t *meta;    /* [count, generation, dropped, then per datagram: length, peer] */
  int32_t generation;
  int32_t peers;
  peer_entry table[TABLE];
  int32_t by_id[MAX_PEERS]; /* id -> table index */
  queued *head, *tail;
  int32_t queued_count;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in6 from[BATCH];
} sock_t;

/* ---- errors ------------------------------------------------------------ */

static napi_value throw_errno(napi_env env, int err, const char *what) {
  napi_value msg, code, error;
  char text[256];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  const char *name = uv_err_name(-err);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_throw(env, error);
  return NULL;
}

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "coapfw native udp: " #call " failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

/* ---- addresses --------------------------------------------------------- */

/* A v4 or v6 literal to a sockaddr for this socket (v4 peers of a v6 socket become mapped). */
static int parse_address(sock_t *s, const char *text, uint32_t port, struct sockaddr_in6 *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (port == 0 || port > 65535) return EINVAL;
  struct in_addr a4;
  if (s->v6) {
    out->sin6_family = AF_INET6;
    out->sin6_port = htons((uint16_t)port);
    char bare[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    const char *zone = strchr(text, '%');
    if (zone) {
      /* fe80::1%eth0 or fe80::1%2: a link-local peer and the interface it is on. */
      size_t n = (size_t)(zone - text);
      if (n >= INET6_ADDRSTRLEN) return EINVAL;
      memcpy(bare, text, n);
      bare[n] = 0;
      char *end;
      unsigned long idx = strtoul(zone + 1, &end, 10);
      out->sin6_scope_id = (*end == 0 && end != zone + 1) ? (uint32_t)idx : if_nametoindex(zone + 1);
      if (out->sin6_scope_id == 0) return EINVAL;
      text = bare;
    }
    if (inet_pton(AF_INET6, text, &out->sin6_addr) != 1) {
      if (zone) return EINVAL;
      if (inet_pton(AF_INET, text, &a4) != 1) return EINVAL;
      out->sin6_addr.s6_addr[10] = 0xff;
      out->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&out->sin6_addr.s6_addr[12], &a4, 4);
    }
    *len = sizeof(struct sockaddr_in6);
  } else {
    struct sockaddr_in *o4 = (struct sockaddr_in *)out;
    o4->sin_family = AF_INET;
    o4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, text, &o4->sin_addr) != 1) return EINVAL;
    *len = sizeof(struct sockaddr_in);
  }
  return 0;
}

/* The sender of a datagram as 16 address bytes (v4 mapped) and a port. */
static void key_of(const struct sockaddr_in6 *from, uint8_t addr[16], uint16_t *port, uint32_t *scope) {
  *scope = 0;
  if (from->sin6_family == AF_INET) {
    const struct sockaddr_in *f4 = (const struct sockaddr_in *)from;
    memset(addr, 0, 10);
    addr[10] = addr[11] = 0xff;
    memcpy(addr + 12, &f4->sin_addr, 4);
    *port = ntohs(f4->sin_port);
  } else {
    memcpy(addr, &from->sin6_addr, 16);
    *port = ntohs(from->sin6_port);
    *scope = from->sin6_scope_id;
  }
}

static uint32_t hash_key(const uint8_t addr[16], uint16_t port, uint32_t scope) {
  uint32_t h = 2166136261u ^ scope;
  for (int i = 0; i < 16; i++) h = (h ^ addr[i]) * 16777619u;
  h = (h ^ (port & 0xff)) * 16777619u;
  h = (h ^ (port >> 8)) * 16777619u;
  return h;
}

static void clear_peers(sock_t *s) {
  for (int i = 0; i < TABLE; i++) s->table[i].id = -1;
  s->peers = 0;
  s->generation++;
}

/* The sender's number, assigning one if it is new; the table starts over when full. */
static int32_t peer_id(sock_t *s, const struct sockaddr_in6 *from) {
  uint8_t addr[16];
  uint16_t port;
  uint32_t scope;
  key_of(from, addr, &port, &scope);
  uint32_t i = hash_key(addr, port, scope) & (TABLE - 1);
  for (;;) {
    peer_entry *e = &s->table[i];
    if (e->id < 0) break;
    if (e->port == port && e->scope == scope && memcmp(e->addr, addr, 16) == 0) return e->id;
    i = (i + 1) & (TABLE - 1);
  }
  /* receive() starts the table over before a batch could overfill it. */
  peer_entry *e = &s->table[i];
  memcpy(e->addr, addr, 16);
  e->port = port;
  e->scope = scope;
  e->id = s->peers++;
  s->by_id[e->id] = (int32_t)i;
  return e->id;
}

/* [address, port]; with `unmap`, `::ffff:a.b.c.d` is reported as `a.b.c.d`, as the dgram transport names senders. */
static napi_value address_pair(napi_env env, const uint8_t addr[16], uint16_t port, uint32_t scope, int unmap) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (unmap && memcmp(addr, mapped, 12) == 0) inet_ntop(AF_INET, addr + 12, text, INET6_ADDRSTRLEN);
  else inet_ntop(AF_INET6, addr, text, INET6_ADDRSTRLEN);
  if (scope != 0) {
    /* As node:dgram reports a link-local sender: fe80::1%eth0. */
    char name[IF_NAMESIZE];
    size_t n = strlen(text);
    if (if_indextoname(scope, name)) snprintf(text + n, sizeof text - n, "%%%s", name);
    else snprintf(text + n, sizeof text - n, "%%%u", scope);
  }
  napi_value pair, a, p;
  napi_create_array_with_length(env, 2, &pair);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &a);
  napi_create_uint32(env, port, &p);
  napi_set_element(env, pair, 0, a);
  napi_set_element(env, pair, 1, p);
  return pair;
}

/* ---- lifetime ---------------------------------------------------------- */

static void free_queue(sock_t *s) {
  while (s->head) {
    queued *q = s->head;
    s->head = q->next;
    free(q);
  }
  s->tail = NULL;
  s->queued_count = 0;
}

static void maybe_free(sock_t *s) {
  if (s->handle_done && s->finalized) free(s);
}

static void on_handle_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  /* Here, not in close(): close() may run inside the callback that uses these. */
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_delete_reference(env, s->on_recv);
  napi_delete_reference(env, s->on_error);
  napi_delete_reference(env, s->data_ref);
  napi_delete_reference(env, s->meta_ref);
  napi_async_destroy(env, s->async);
  napi_close_handle_scope(env, scope);
  s->handle_done = 1;
  maybe_free(s);
}

static void release(sock_t *s) {
  if (s->closed) return;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  free_queue(s);
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = (sock_t *)data;
  /* Only reached once close() dropped the references that kept the object alive. */
  s->finalized = 1;
  maybe_free(s);
}

/* ---- receiving --------------------------------------------------------- */

static void call_js(sock_t *s, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, result;
  napi_get_reference_value(env, fn_ref, &fn);
  napi_get_global(env, &recv); /* make_callback wants an object for `this` */
  if (napi_make_callback(env, s->async, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    /* As a throwing 'message' listener of node:dgram does: the process's uncaught-exception path. */
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void report_error(sock_t *s, int err) {
  napi_handle_scope scope;
  napi_open_handle_scope(s->env, &scope);
  napi_value code;
  napi_create_string_utf8(s->env, uv_err_name(-err), NAPI_AUTO_LENGTH, &code);
  call_js(s, s->on_error, 1, &code);
  napi_close_handle_scope(s->env, scope);
}

static void receive(sock_t *s) {
  for (int round = 0; round < ROUNDS && !s->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      s->msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
      s->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(s->fd, s->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      /* ICMP errors of earlier sends (connected sockets) and anything else the kernel reports. */
      report_error(s, errno);
      continue;
    }
    /* The table starts over between batches, never within one: JavaScript sees one generation per call. */
    if (s->peers + n > MAX_PEERS) clear_peers(s);
    int count = 0;
    for (int i = 0; i < n; i++) {
      struct msghdr *h = &s->msgs[i].msg_hdr;
      const struct sockaddr_in6 *from = &s->from[i];
      int family = from->sin6_family;
      uint16_t port = family == AF_INET ? ntohs(((const struct sockaddr_in *)from)->sin_port) : ntohs(from->sin6_port);
      /* A datagram cut to the slot, or from port 0 (which cannot be answered), is not delivered. */
      if ((h->msg_flags & MSG_TRUNC) || port == 0 || (family != AF_INET && family != AF_INET6)) {
        s->meta[2]++;
        continue;
      }
      if (count != i) memmove(s->data + (size_t)count * SLOT, s->data + (size_t)i * SLOT, s->msgs[i].msg_len);
      s->meta[3 + 2 * count] = (int32_t)s->msgs[i].msg_len;
      s->meta[4 + 2 * count] = peer_id(s, from);
      count++;
    }
    s->meta[0] = count;
    s->meta[1] = s->generation;
    if (count > 0) call_js(s, s->on_recv, 0, NULL);
    if (n < BATCH) return;
  }
}

/* ---- sending ----------------------------------------------------------- */

static void flush_queue(sock_t *s) {
  while (s->head) {
    queued *q = s->head;
    ssize_t r = s->connected ? send(s->fd, q->data, q->len, MSG_DONTWAIT)
                             : sendto(s->fd, q->data, q->len, MSG_DONTWAIT, (struct sockaddr *)&q->to, q->tolen);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) return;
    /* Sent, or failed for good (UDP: the datagram is lost, as on the wire). */
    s->head = q->next;
    if (!s->head) s->tail = NULL;
    s->queued_count--;
    free(q);
  }
}

static void on_poll(uv_poll_t *h, int status, int events);

static void start_poll(sock_t *s, int events) {
  s->events = events;
  uv_poll_start(&s->poll, events, on_poll);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_t *s = (sock_t *)h->data;
  if (s->closed) return;
  if (status < 0) {
    /*
     * libuv stops the handle on POLLERR and says UV_EBADF; for a UDP socket
     * POLLERR is a pending error (an ICMP error, on a connected socket).
     * Take it (SO_ERROR clears it), report it, and poll on.
     */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0) {
      report_error(s, -status);
      return;
    }
    report_error(s, err);
    if (s->closed) return;
    start_poll(s, s->events);
    receive(s);
    return;
  }
  if (events & UV_WRITABLE) {
    flush_queue(s);
    if (!s->head && !s->closed) start_poll(s, UV_READABLE);
  }
  if ((events & UV_READABLE) && !s->closed) receive(s);
}

/* Queue a datagram the kernel would not take now; past MAX_QUEUED it is dropped. */
static int enqueue(sock_t *s, const uint8_t *data, size_t len, const struct sockaddr_in6 *to, socklen_t tolen) {
  if (s->queued_count >= MAX_QUEUED) return ENOBUFS;
  queued *q = malloc(sizeof(queued) + len);
  if (!q) return ENOMEM;
  q->next = NULL;
  if (to) memcpy(&q->to, to, tolen);
  q->tolen = tolen;
  q->len = len;
  memcpy(q->data, data, len);
  if (s->tail) s->tail->next = q;
  else s->head = q;
  s->tail = q;
  s->queued_count++;
  if (!(s->events & UV_WRITABLE)) start_poll(s, UV_READABLE | UV_WRITABLE);
  return 0;
}

static int send_one(sock_t *s, const uint8_t *data, size_t len, const struct sockaddr_in6 *to, socklen_t tolen) {
  if (s->head) return enqueue(s, data, len, to, tolen); /* keep the order */
  ssize_t r = s->connected ? send(s->fd, data, len, MSG_DONTWAIT) : sendto(s->fd, data, len, MSG_DONTWAIT, (const struct sockaddr *)to, tolen);
  if (r >= 0) return 0;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return enqueue(s, data, len, to, tolen);
  return errno;
}

/* ---- JavaScript API ---------------------------------------------------- */

/* The call's `argc` arguments into `argv`, and the socket that is the first; NULL (an exception pending) if it is not one. */
static sock_t *socket_args(napi_env env, napi_callback_info info, size_t argc, napi_value *argv) {
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || napi_get_value_external(env, argv[0], &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "coapfw native udp: not a socket");
    return NULL;
  }
  return (sock_t *)p;
}

static int get_prop_int(napi_env env, napi_value obj, const char *key, int32_t dflt) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return dflt;
  napi_typeof(env, v, &t);
  if (t == napi_boolean) {
    bool b;
    napi_get_value_bool(env, v, &b);
    return b ? 1 : 0;
  }
  if (t != napi_number) return dflt;
  int32_t out;
  napi_get_value_int32(env, v, &out);
  return out;
}

static int get_prop_string(napi_env env, napi_value obj, const char *key, char *out, size_t size) {
  napi_value v;
  napi_valuetype t;
  size_t len;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return 0;
  napi_typeof(env, v, &t);
  if (t != napi_string) return 0;
  if (napi_get_value_string_utf8(env, v, out, size, &len) != napi_ok || len >= size - 1) return 0;
  return 1;
}

/*
 * open({ v6, host, port, ipv6Only, reuseAddr, recvBufferSize, connectHost, connectPort },
 *      data: ArrayBuffer(BATCH*SLOT), meta: Int32Array(3 + 2*BATCH), onRecv(), onError(code))
 */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "coapfw native udp: open(options, data, meta, onRecv, onError)");
    return NULL;
  }
  void *data;
  size_t data_len;
  if (napi_get_arraybuffer_info(env, argv[1], &data, &data_len) != napi_ok || data_len < (size_t)BATCH * SLOT) {
    napi_throw_type_error(env, NULL, "coapfw native udp: data must be an ArrayBuffer of BATCH*SLOT bytes");
    return NULL;
  }
  napi_typedarray_type tt;
  size_t meta_len;
  void *meta;
  napi_value meta_ab;
  size_t meta_off;
  if (napi_get_typedarray_info(env, argv[2], &tt, &meta_len, &meta, &meta_ab, &meta_off) != napi_ok || tt != napi_int32_array || meta_len < 3 + 2 * BATCH) {
    napi_throw_type_error(env, NULL, "coapfw native udp: meta must be an Int32Array of 3+2*BATCH");
    return NULL;
  }

  char host[INET6_ADDRSTRLEN + 1] = "127.0.0.1";
  get_prop_string(env, argv[0], "host", host, sizeof host);
  int v6 = get_prop_int(env, argv[0], "v6", 0);
  int port = get_prop_int(env, argv[0], "port", 0);
  int ipv6_only = get_prop_int(env, argv[0], "ipv6Only", 0);
  int reuse = get_prop_int(env, argv[0], "reuseAddr", 0);
  int rcvbuf = get_prop_int(env, argv[0], "recvBufferSize", 0);
  char chost[INET6_ADDRSTRLEN + 1];
  int has_connect = get_prop_string(env, argv[0], "connectHost", chost, sizeof chost);
  int cport = get_prop_int(env, argv[0], "connectPort", 0);

  sock_t *s = calloc(1, sizeof(sock_t));
  if (!s) return throw_errno(env, ENOMEM, "udp");
  s->env = env;
  s->v6 = v6;
  s->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    int e = errno;
    free(s);
    return throw_errno(env, e, "udp: socket");
  }
  int one = 1;
  if (v6) {
    int only = ipv6_only ? 1 : 0;
    setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
  }
  if (reuse) setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in6 local;
  socklen_t local_len;
  if (parse_address(s, host, port == 0 ? 1 : (uint32_t)port, &local, &local_len) != 0) {
    close(s->fd);
    free(s);
    return throw_errno(env, EINVAL, "udp: bind address");
  }
  if (port == 0) {
    if (v6) local.sin6_port = 0;
    else ((struct sockaddr_in *)&local)->sin_port = 0;
  }
  if (bind(s->fd, (struct sockaddr *)&local, local_len) != 0) {
    int e = errno;
    close(s->fd);
    free(s);
    return throw_errno(env, e, "udp: bind");
  }
  if (rcvbuf > 0) setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (has_connect) {
    struct sockaddr_in6 to;
    socklen_t to_len;
    int e = parse_address(s, chost, (uint32_t)cport, &to, &to_len);
    if (e == 0 && connect(s->fd, (struct sockaddr *)&to, to_len) != 0) e = errno;
    if (e != 0) {
      close(s->fd);
      free(s);
      return throw_errno(env, e, "udp: connect");
    }
    s->connected = 1;
  }

  s->data = (uint8_t *)data;
  s->meta = (int32_t *)meta;
  for (int i = 0; i < BATCH; i++) {
    s->iov[i].iov_base = s->data + (size_t)i * SLOT;
    s->iov[i].iov_len = SLOT;
    s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
    s->msgs[i].msg_hdr.msg_iovlen = 1;
    s->msgs[i].msg_hdr.msg_name = &s->from[i];
  }
  clear_peers(s);

  uv_loop_t *loop;
  napi_value name;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, s->fd) != 0) {
    close(s->fd);
    free(s);
    napi_throw_error(env, NULL, "coapfw native udp: cannot poll the socket");
    return NULL;
  }
  s->poll.data = s;
  napi_create_string_utf8(env, "coapfw:udp", NAPI_AUTO_LENGTH, &name);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_async_init(env, resource, name, &s->async);
  napi_create_reference(env, argv[3], 1, &s->on_recv);
  napi_create_reference(env, argv[4], 1, &s->on_error);
  napi_create_reference(env, argv[1], 1, &s->data_ref);
  napi_create_reference(env, argv[2], 1, &s->meta_ref);
  start_poll(s, UV_READABLE);

  napi_value handle;
  if (napi_create_external(env, s, finalize, NULL, &handle) != napi_ok) {
    release(s);
    s->finalized = 1;
    napi_throw_error(env, NULL, "coapfw native udp: cannot wrap the socket");
    return NULL;
  }
  return handle;
}

/* send(handle, data: Uint8Array, address: string, port: number) -> undefined | error code */
static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  sock_t *s = socket_args(env, info, 4, argv);
  if (!s) return NULL;
  napi_value out;
  if (s->closed) {
    napi_create_string_utf8(env, "EBADF", NAPI_AUTO_LENGTH, &out);
    return out;
  }
  napi_typedarray_type tt;
  size_t len;
  void *bytes;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, argv[1], &tt, &len, &bytes, &ab, &off) != napi_ok || tt != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "coapfw native udp: data must be a Uint8Array");
    return NULL;
  }
  int err;
  if (s->connected) {
    err = send_one(s, bytes, len, NULL, 0);
  } else {
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    size_t tl;
    uint32_t port;
    struct sockaddr_in6 to;
    socklen_t to_len;
    if (napi_get_value_string_utf8(env, argv[2], text, sizeof text, &tl) != napi_ok || tl >= sizeof text - 1 ||
        napi_get_value_uint32(env, argv[3], &port) != napi_ok) {
      err = EINVAL;
    } else {
      err = parse_address(s, text, port, &to, &to_len);
      if (err == 0) err = send_one(s, bytes, len, &to, to_len);
    }
  }
  if (err == 0) {
    napi_get_undefined(env, &out);
    return out;
  }
  napi_create_string_utf8(env, uv_err_name(-err), NAPI_AUTO_LENGTH, &out);
  return out;
}

/* peer(handle, id) -> [address, port] | undefined (a number the table no longer holds) */
static napi_value js_peer(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = socket_args(env, info, 2, argv);
  if (!s) return NULL;
  int32_t id;
  napi_value out;
  napi_get_undefined(env, &out);
  if (napi_get_value_int32(env, argv[1], &id) != napi_ok || id < 0 || id >= s->peers) return out;
  peer_entry *e = &s->table[s->by_id[id]];
  return address_pair(env, e->addr, e->port, e->scope, 1);
}

/* address(handle) -> [address, port] */
static napi_value js_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  sock_t *s = socket_args(env, info, 1, argv);
  if (!s) return NULL;
  if (s->closed) return throw_errno(env, EBADF, "udp: address");
  struct sockaddr_in6 a;
  socklen_t len = sizeof a;
  if (getsockname(s->fd, (struct sockaddr *)&a, &len) != 0) return throw_errno(env, errno, "udp: getsockname");
  uint8_t addr[16];
  uint16_t port;
  uint32_t scope;
  key_of(&a, addr, &port, &scope);
  /* A v6 socket reports its own address as bound, mapped or not (as dgram's address() does). */
  return address_pair(env, addr, port, 0, a.sin6_family == AF_INET);
}

/* close(handle) */
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  sock_t *s = socket_args(env, info, 1, argv);
  if (!s) return NULL;
  release(s);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"peer", NULL, js_peer, NULL, NULL, NULL, napi_default, NULL},
      {"address", NULL, js_address, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value v;
  napi_create_int32(env, BATCH, &v);
  napi_set_named_property(env, exports, "BATCH", v);
  napi_create_int32(env, SLOT, &v);
  napi_set_named_property(env, exports, "SLOT", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
