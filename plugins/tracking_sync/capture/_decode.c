/* The compiled twin of tracking_sync.capture.decoding.PythonDecoder: pgoutput messages of
 * action into CSV change rows, byte for byte as the Python decoder writes them.
 *
 * Built by `python -m tracking_sync.capture.build_decoder` (the Makefile's venv step and the
 * Docker image do it); when the module is missing, the capture runs the Python decoder.
 *
 * What it reads: `COPY (select data from pg_logical_slot_peek_binary_changes(...)) TO STDOUT
 * (FORMAT binary)`, written into write() by psycopg2's copy_expert, one CopyData message per call.
 * The binary COPY framing (PostgreSQL 15 docs, COPY, "Binary Format"): a header (the 11-byte
 * signature PGCOPY\n\377\r\n\0, Int32 flags, Int32 header extension length and the extension),
 * then per tuple an Int16 field count (1 here) and per field an Int32 length (-1: NULL, which a
 * peek never sends) and that many bytes, then the trailer, an Int16 -1. PostgreSQL (copyto.c)
 * sends the header with the first tuple and the trailer alone; a tuple split between two writes
 * is kept until its end arrives. Each field is one pgoutput message (protocol version 1),
 * PostgreSQL 15 docs, "Logical Replication Message Formats"
 * (protocol-logicalrep-message-formats); the writer is src/backend/replication/logical/proto.c.
 * Every integer is big-endian (network byte order):
 *
 *   Begin   'B' Int64 final_lsn (the commit record's LSN), Int64 commit time, Int32 xid
 *   Commit  'C' Int8 flags, Int64 commit LSN, Int64 end LSN, Int64 commit time
 *   Insert  'I' Int32 relation OID, 'N', TupleData (the new tuple)
 *   Update  'U' Int32 relation OID, optionally 'K' TupleData (the old key) or 'O' TupleData
 *           (the old row, REPLICA IDENTITY FULL), then 'N' TupleData (the new tuple)
 *   Delete  'D' Int32 relation OID, 'K' or 'O', TupleData
 *   TupleData: Int16 column count, then per column one of
 *           'n' (NULL), 'u' (an unchanged TOASTed value, not sent),
 *           't' Int32 length + that many bytes (the value's text form), 'b' (binary: not read here)
 *
 * Relation, Truncate, Origin, Type and Message messages, and any message this code does not
 * accept as the Python decoder would, are handed back: write() calls hand_back(message) at once,
 * after writing the rows made before it, and the Python side handles it (a Relation, a
 * Truncate) or raises the Python decoder's error for it; an error it raises ends write().
 * Nothing of a handed-back message has been written or counted. A stream that is not this
 * framing raises tracking_sync.capture.decoding.framing_error's ProtocolError.
 *
 * The fields are written in export's CSV dialect (tracking_sync.capture.rows): NULL is an unquoted
 * \N, text is quoted with quotes doubled, a text column that travels with a marker flag sets it
 * when its value is the text \N, a timestamp without time zone gets the +00 that export writes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* How a source column's text becomes its CSV field: rows.py's _RAW, _TEXT, _FLAGGED_TEXT,
 * _NAIVE_TIME. */
enum { KIND_RAW = 0, KIND_TEXT = 1, KIND_FLAGGED_TEXT = 2, KIND_NAIVE_TIME = 3 };

/* A field of a change row while it is assembled: a piece of the message, how it is written. */
enum { FIELD_DEFAULT, FIELD_RAW, FIELD_QUOTED, FIELD_NAIVE_TIME, FIELD_TRUE };

typedef struct {
    const unsigned char *value;
    Py_ssize_t length;
    int how;
} Field;

typedef struct {
    char *bytes;
    Py_ssize_t length;
} Text;

/* An ActionImages, as its plan: per source column the field it fills and how. */
typedef struct {
    uint32_t oid;
    int refused; /* a RefusedRelation: its changes are handed back, and Python raises its error */
    int columns;
    int fields;
    int *field_of_column;
    int *kind_of_column;
    Text *defaults; /* per field: the template's \N or f */
    int id_field;
    int toastable_field;
} Image;

/* The distinct ids touched: a sparse bitmap, 8 KiB per 65,536-id block (TouchedIds). */
typedef struct {
    int64_t key;
    unsigned char *bits;
} Block;

typedef struct {
    PyObject_HEAD
    uint64_t applied_lsn, upto_lsn, next_xid;
    PyObject *write_rows;
    PyObject *hand_back; /* hand_back(message): what this decoder does not handle */
    Image *images;
    int image_count;
    /* the batch's state, read by the Python side */
    long long inserts, updates, deletes, transactions, skipped, written, seq, touched;
    int in_window;
    int has_begin;
    uint64_t final_lsn;
    char xid_lsn[64]; /* "<xid8>,<final_lsn>," of the transaction in progress */
    int xid_lsn_length;
    /* rows made but not yet handed to write_rows */
    char *out;
    Py_ssize_t out_length, out_capacity, flush_bytes;
    long long out_rows;
    /* touched ids */
    Block *blocks;
    Py_ssize_t block_count, block_capacity; /* open addressing, capacity a power of two */
    /* fields of the tuples being read */
    Field *new_fields, *old_fields;
    int field_capacity;
    /* the binary COPY stream: where it is, and the bytes of a tuple split between writes */
    int copy_state;
    int writing;
    unsigned char *pending;
    Py_ssize_t pending_length, pending_capacity;
} Decoder;

enum { COPY_HEADER = 0, COPY_TUPLES = 1, COPY_ENDED = 2 };

#define FLUSH_BYTES (256 * 1024) /* the most write_rows() is handed at once, by default */
#define BLOCK_BITS 16

static const unsigned char NULL_TEXT[] = "\\N";

static uint32_t read_uint32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t read_uint64(const unsigned char *p) {
    return ((uint64_t)read_uint32(p) << 32) | read_uint32(p + 4);
}

/* --- the output buffer ---------------------------------------------------------------- */

static int reserve(Decoder *self, Py_ssize_t more) {
    if (self->out_length + more <= self->out_capacity)
        return 0;
    if (more < 0 || more > PY_SSIZE_T_MAX / 4 - self->out_length) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t capacity = self->out_capacity ? self->out_capacity : self->flush_bytes * 2 + 4096;
    while (capacity < self->out_length + more)
        capacity *= 2;
    char *out = realloc(self->out, capacity);
    if (out == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->out = out;
    self->out_capacity = capacity;
    return 0;
}

static int flush(Decoder *self) {
    if (self->out_rows == 0)
        return 0;
    PyObject *data = PyBytes_FromStringAndSize(self->out, self->out_length);
    if (data == NULL)
        return -1;
    PyObject *rows = PyLong_FromLongLong(self->out_rows);
    if (rows == NULL) {
        Py_DECREF(data);
        return -1;
    }
    self->out_length = 0;
    self->out_rows = 0;
    PyObject *result = PyObject_CallFunctionObjArgs(self->write_rows, data, rows, NULL);
    Py_DECREF(data);
    Py_DECREF(rows);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* --- touched ids ------------------------------------------------------------------------ */

static uint64_t mix(int64_t key) {
    uint64_t x = (uint64_t)key * 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 29);
}

static int touch(Decoder *self, int64_t id) {
    int64_t key = id >> BLOCK_BITS; /* arithmetic shift: Python's floor for negative ids */
    int64_t offset = id & 0xFFFF;
    if (self->block_count * 2 >= self->block_capacity) {
        Py_ssize_t capacity = self->block_capacity ? self->block_capacity * 2 : 64;
        Block *blocks = calloc(capacity, sizeof(Block));
        if (blocks == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < self->block_capacity; i++) {
            if (self->blocks[i].bits == NULL)
                continue;
            Py_ssize_t slot = mix(self->blocks[i].key) & (capacity - 1);
            while (blocks[slot].bits != NULL)
                slot = (slot + 1) & (capacity - 1);
            blocks[slot] = self->blocks[i];
        }
        free(self->blocks);
        self->blocks = blocks;
        self->block_capacity = capacity;
    }
    Py_ssize_t slot = mix(key) & (self->block_capacity - 1);
    while (self->blocks[slot].bits != NULL && self->blocks[slot].key != key)
        slot = (slot + 1) & (self->block_capacity - 1);
    Block *block = &self->blocks[slot];
    if (block->bits == NULL) {
        block->bits = calloc(1, 1 << (BLOCK_BITS - 3));
        if (block->bits == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        block->key = key;
        self->block_count++;
    }
    unsigned char bit = (unsigned char)(1 << (offset & 7));
    if (!(block->bits[offset >> 3] & bit)) {
        block->bits[offset >> 3] |= bit;
        self->touched++;
    }
    return 0;
}

/* --- formatting --------------------------------------------------------------------------- */

/* Reads the TupleData at *pos into fields (file order). Returns 0, or -1 when the tuple is not
 * one the Python decoder reads the same way (then the message is handed back). */
static int read_tuple(Decoder *self, const Image *image, const unsigned char *data, Py_ssize_t length,
                      Py_ssize_t *pos, Field *fields, int *unchanged) {
    Py_ssize_t p = *pos;
    if (p + 2 > length || ((data[p] << 8) | data[p + 1]) != image->columns)
        return -1;
    p += 2;
    for (int field = 0; field < image->fields; field++)
        fields[field].how = FIELD_DEFAULT;
    *unchanged = 0;
    for (int column = 0; column < image->columns; column++) {
        if (p >= length)
            return -1;
        int field = image->field_of_column[column];
        unsigned char marker = data[p];
        if (marker == 't') {
            if (p + 5 > length)
                return -1;
            Py_ssize_t size = read_uint32(data + p + 1);
            Py_ssize_t start = p + 5;
            if (start + size > length)
                return -1;
            p = start + size;
            Field *f = &fields[field];
            f->value = data + start;
            f->length = size;
            switch (image->kind_of_column[column]) {
            case KIND_RAW:
                f->how = FIELD_RAW;
                break;
            case KIND_NAIVE_TIME:
                if (size == 0)
                    return -1; /* Python's value[-1] fails: its error, not ours */
                f->how = FIELD_NAIVE_TIME;
                break;
            default:
                f->how = FIELD_QUOTED;
                if (image->kind_of_column[column] == KIND_FLAGGED_TEXT && size == 2 &&
                    memcmp(f->value, NULL_TEXT, 2) == 0)
                    fields[field + 1].how = FIELD_TRUE;
            }
        } else if (marker == 'n') {
            p += 1;
        } else if (marker == 'u' && field == image->toastable_field) {
            *unchanged = 1;
            p += 1;
        } else {
            return -1;
        }
    }
    *pos = p;
    return 0;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* The bytes a field is written as, into out (which has room: see field_room). */
static Py_ssize_t write_field(const Image *image, int index, const Field *f, char *out) {
    const unsigned char *v = f->value;
    Py_ssize_t n = f->length;
    char *start = out;
    switch (f->how) {
    case FIELD_DEFAULT:
        memcpy(out, image->defaults[index].bytes, image->defaults[index].length);
        return image->defaults[index].length;
    case FIELD_TRUE:
        *out = 't';
        return 1;
    case FIELD_RAW:
        memcpy(out, v, n);
        return n;
    case FIELD_NAIVE_TIME:
        /* rows._naive_utc: a timestamp without time zone holding UTC gets +00, before a
         * trailing " BC"; infinity and -infinity stay as they are. */
        if (v[n - 1] != 'C' && is_digit(v[0])) {
            memcpy(out, v, n);
            memcpy(out + n, "+00", 3);
            return n + 3;
        }
        if (n >= 3 && memcmp(v + n - 3, " BC", 3) == 0) {
            memcpy(out, v, n - 3);
            memcpy(out + n - 3, "+00 BC", 6);
            return n + 3;
        }
        if (is_digit(v[0])) {
            memcpy(out, v, n);
            memcpy(out + n, "+00", 3);
            return n + 3;
        }
        memcpy(out, v, n);
        return n;
    default: /* FIELD_QUOTED */
        *out++ = '"';
        for (;;) {
            const unsigned char *quote = memchr(v, '"', n);
            if (quote == NULL) {
                memcpy(out, v, n);
                out += n;
                break;
            }
            Py_ssize_t run = quote - v + 1;
            memcpy(out, v, run);
            out += run;
            *out++ = '"';
            v += run;
            n -= run;
        }
        *out++ = '"';
        return out - start;
    }
}

/* An upper bound of the bytes write_field writes. */
static Py_ssize_t field_room(const Image *image, int index, const Field *f) {
    switch (f->how) {
    case FIELD_DEFAULT:
        return image->defaults[index].length;
    case FIELD_TRUE:
        return 1;
    case FIELD_QUOTED:
        return 2 * f->length + 2;
    default:
        return f->length + 6;
    }
}

/* The decimal digits of a positive count (sprintf's %lld, without its cost per row). */
static char *write_count(char *out, long long value) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    while (n > 0)
        *out++ = digits[--n];
    return out;
}

/* Appends one change row: seq,"kind",xid,lsn,<fields>,<unchanged>\n */
static int write_row(Decoder *self, const Image *image, char kind, const Field *fields, int unchanged) {
    Py_ssize_t room = 64 + self->xid_lsn_length;
    for (int i = 0; i < image->fields; i++)
        room += field_room(image, i, &fields[i]) + 1;
    if (reserve(self, room) < 0)
        return -1;
    self->seq++;
    char *out = self->out + self->out_length;
    char *start = out;
    out = write_count(out, self->seq);
    *out++ = ',';
    *out++ = '"';
    *out++ = kind;
    *out++ = '"';
    *out++ = ',';
    memcpy(out, self->xid_lsn, self->xid_lsn_length);
    out += self->xid_lsn_length;
    for (int i = 0; i < image->fields; i++) {
        if (i)
            *out++ = ',';
        out += write_field(image, i, &fields[i], out);
    }
    *out++ = ',';
    *out++ = unchanged ? 't' : 'f';
    *out++ = '\n';
    self->out_length += out - start;
    self->written += out - start;
    self->out_rows++;
    return 0;
}

/* The id of a tuple as Python's int() reads the field; -1 when it is not plain digits (then
 * the message is handed back, and Python reads it or raises). */
static int parse_id(const Image *image, const Field *fields, int64_t *id) {
    const Field *f = &fields[image->id_field];
    if (f->how != FIELD_RAW || f->length == 0 || f->length > 19)
        return -1;
    const unsigned char *v = f->value;
    Py_ssize_t i = 0;
    int negative = 0;
    if (v[0] == '-') {
        negative = 1;
        i = 1;
        if (f->length == 1)
            return -1;
    }
    int64_t value = 0;
    for (; i < f->length; i++) {
        if (!is_digit(v[i]))
            return -1;
        value = value * 10 + (v[i] - '0');
    }
    *id = negative ? -value : value;
    return 0;
}

static int same_field(const Image *image, int index, const Field *a, const Field *b) {
    char small_a[64], small_b[64];
    Py_ssize_t room = field_room(image, index, a) > field_room(image, index, b) ? field_room(image, index, a)
                                                                                 : field_room(image, index, b);
    char *x = small_a, *y = small_b;
    if (room > (Py_ssize_t)sizeof(small_a)) {
        x = malloc(room);
        y = malloc(room);
        if (x == NULL || y == NULL) {
            free(x);
            free(y);
            PyErr_NoMemory();
            return -1;
        }
    }
    Py_ssize_t na = write_field(image, index, a, x), nb = write_field(image, index, b, y);
    int same = na == nb && memcmp(x, y, na) == 0;
    if (x != small_a) {
        free(x);
        free(y);
    }
    return same;
}

/* --- messages ------------------------------------------------------------------------------ */

enum { HANDLED = 0, HAND_BACK = 1, FAILED = -1 };

static Image *find_image(Decoder *self, uint32_t oid) {
    for (int i = 0; i < self->image_count; i++)
        if (self->images[i].oid == oid)
            return &self->images[i];
    return NULL;
}

static int ensure_fields(Decoder *self, int fields) {
    if (fields <= self->field_capacity)
        return 0;
    Field *new_fields = realloc(self->new_fields, fields * sizeof(Field));
    if (new_fields == NULL)
        goto fail;
    self->new_fields = new_fields;
    Field *old_fields = realloc(self->old_fields, fields * sizeof(Field));
    if (old_fields == NULL)
        goto fail;
    self->old_fields = old_fields;
    self->field_capacity = fields;
    return 0;
fail:
    PyErr_NoMemory();
    return -1;
}

static int begin(Decoder *self, const unsigned char *data, Py_ssize_t length) {
    if (length < 21)
        return HAND_BACK;
    uint64_t final_lsn = read_uint64(data + 1);
    uint32_t xid = read_uint32(data + 17);
    int in_window = self->applied_lsn <= final_lsn && final_lsn < self->upto_lsn;
    uint64_t xid8 = 0;
    if (in_window) {
        /* tracking_sync.core.lsn.widen_xid: the xid's epoch, from the next xid8 */
        uint64_t epoch = self->next_xid >> 32, next_low = self->next_xid & 0xFFFFFFFFULL;
        if (xid <= next_low)
            xid8 = (epoch << 32) + xid;
        else if (epoch == 0)
            return HAND_BACK; /* widen_xid raises, with its explanation */
        else
            xid8 = ((epoch - 1) << 32) + xid;
    }
    self->has_begin = 1;
    self->final_lsn = final_lsn;
    self->in_window = in_window;
    if (in_window) {
        self->transactions++;
        self->xid_lsn_length = sprintf(self->xid_lsn, "%llu,%llu,", (unsigned long long)xid8,
                                       (unsigned long long)final_lsn);
    } else {
        self->skipped++;
    }
    return HANDLED;
}

static int change(Decoder *self, const unsigned char *data, Py_ssize_t length) {
    if (!self->in_window)
        return HANDLED;
    if (length < 5)
        return HAND_BACK;
    Image *image = find_image(self, read_uint32(data + 1));
    if (image == NULL)
        return HANDLED; /* another table of the publication */
    if (image->refused || length < 6)
        return HAND_BACK;
    if (ensure_fields(self, image->fields) < 0)
        return FAILED;
    Field *fields = self->new_fields, *old = self->old_fields;
    unsigned char kind = data[0], tuple_kind = data[5];
    int unchanged = 0, unsent = 0, ignored, key_changed = 0;
    Py_ssize_t pos = 6;
    int64_t id, old_id = 0;
    if (kind == 'I') {
        if (tuple_kind != 'N' || read_tuple(self, image, data, length, &pos, fields, &ignored) < 0)
            return HAND_BACK;
    } else if (kind == 'D') {
        if ((tuple_kind != 'K' && tuple_kind != 'O') ||
            read_tuple(self, image, data, length, &pos, fields, &ignored) < 0)
            return HAND_BACK;
    } else {
        int has_old = tuple_kind == 'K' || tuple_kind == 'O';
        pos = 5;
        if (has_old) {
            pos = 6;
            if (read_tuple(self, image, data, length, &pos, old, &ignored) < 0)
                return HAND_BACK;
        }
        if (pos >= length || data[pos] != 'N')
            return HAND_BACK;
        pos += 1;
        if (read_tuple(self, image, data, length, &pos, fields, &unsent) < 0)
            return HAND_BACK;
        if (unsent) {
            if (tuple_kind == 'O') { /* REPLICA IDENTITY FULL: the old row has it */
                fields[image->toastable_field] = old[image->toastable_field];
                fields[image->toastable_field + 1] = old[image->toastable_field + 1];
            } else {
                unchanged = 1;
            }
        }
        if (has_old) {
            int same = same_field(image, image->id_field, &old[image->id_field], &fields[image->id_field]);
            if (same < 0)
                return FAILED;
            if (!same) {
                key_changed = 1;
                if (parse_id(image, old, &old_id) < 0)
                    return HAND_BACK;
            }
        }
    }
    if (pos != length || parse_id(image, fields, &id) < 0)
        return HAND_BACK;
    /* Accepted: from here on, written and counted. */
    if (key_changed) { /* the key changed: the old id is gone, as if deleted */
        if (write_row(self, image, 'D', old, 0) < 0 || touch(self, old_id) < 0)
            return FAILED;
        self->deletes++;
    }
    if (write_row(self, image, (char)kind, fields, unchanged) < 0 || touch(self, id) < 0)
        return FAILED;
    if (kind == 'I')
        self->inserts++;
    else if (kind == 'D')
        self->deletes++;
    else
        self->updates++;
    return HANDLED;
}

/* One pgoutput message: HANDLED, HAND_BACK (nothing of it written or counted) or FAILED. */
static int message(Decoder *self, const unsigned char *data, Py_ssize_t length) {
    if (length == 0)
        return HAND_BACK;
    switch (data[0]) {
    case 'B':
        return begin(self, data, length);
    case 'C':
        return HANDLED;
    case 'I':
    case 'U':
    case 'D':
        return change(self, data, length);
    }
    return HAND_BACK;
}

/* A message this decoder does not handle goes to hand_back(message), synchronously, after the
 * rows made before it are written (as the Python decoder would have written them). */
static int hand_back(Decoder *self, const unsigned char *data, Py_ssize_t length) {
    if (flush(self) < 0)
        return -1;
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, length);
    if (bytes == NULL)
        return -1;
    PyObject *result = PyObject_CallOneArg(self->hand_back, bytes);
    Py_DECREF(bytes);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    return 0;
}

/* A framing error: tracking_sync.capture.decoding.framing_error(what, value) raises it, so both
 * decoders raise the same error with the same words. */
static void framing_error(const char *what, long long value) {
    PyObject *decoding = PyImport_ImportModule("tracking_sync.capture.decoding");
    if (decoding == NULL)
        return;
    PyObject *result = PyObject_CallMethod(decoding, "framing_error", "sL", what, value);
    Py_DECREF(decoding);
    Py_XDECREF(result);
    if (!PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "binary COPY framing: %s (%lld)", what, value);
}

static const unsigned char SIGNATURE[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

/* Reads the binary COPY stream in data[0:length): the header, then tuples of one field (a
 * message), then the trailer. Returns the bytes read (whole pieces only: the rest waits for
 * the next write), or -1 with an error set. */
static Py_ssize_t read_stream(Decoder *self, const unsigned char *data, Py_ssize_t length) {
    Py_ssize_t pos = 0;
    if (self->copy_state == COPY_HEADER) {
        if (length < 19)
            return 0;
        if (memcmp(data, SIGNATURE, 11) != 0) {
            framing_error("signature", 0);
            return -1;
        }
        uint32_t flags = read_uint32(data + 11);
        if (flags & 0xFFFF0000u) { /* bit 16: OIDs; the others: unknown critical flags */
            framing_error("flags", flags);
            return -1;
        }
        Py_ssize_t extension = read_uint32(data + 15);
        if (extension > PY_SSIZE_T_MAX - 19) {
            framing_error("header extension", (long long)extension);
            return -1;
        }
        if (length < 19 + extension)
            return 0;
        pos = 19 + extension;
        self->copy_state = COPY_TUPLES;
    }
    while (pos < length) {
        if (self->copy_state == COPY_ENDED) {
            framing_error("bytes after the trailer", (long long)(length - pos));
            return -1;
        }
        if (length - pos < 2)
            break;
        int16_t count = (int16_t)((data[pos] << 8) | data[pos + 1]);
        if (count == -1) {
            self->copy_state = COPY_ENDED;
            pos += 2;
            continue;
        }
        if (count != 1) {
            framing_error("field count", count);
            return -1;
        }
        if (length - pos < 6)
            break;
        int32_t size = (int32_t)read_uint32(data + pos + 2);
        if (size < 0) {
            framing_error("field length", size);
            return -1;
        }
        if (length - pos - 6 < size)
            break;
        const unsigned char *body = data + pos + 6;
        pos += 6 + (Py_ssize_t)size;
        int outcome = message(self, body, size);
        if (outcome == FAILED)
            return -1;
        if (outcome == HAND_BACK && hand_back(self, body, size) < 0)
            return -1;
        if (self->out_length >= self->flush_bytes && flush(self) < 0)
            return -1;
    }
    return pos;
}

static int keep_pending(Decoder *self, const unsigned char *data, Py_ssize_t length) {
    if (length > self->pending_capacity) {
        unsigned char *pending = realloc(self->pending, length);
        if (pending == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->pending = pending;
        self->pending_capacity = length;
    }
    memmove(self->pending, data, length);
    self->pending_length = length;
    return 0;
}

/* write(chunk): the decoder as copy_expert's file. psycopg2 calls it once per CopyData message
 * of `COPY (...) TO STDOUT (FORMAT binary)`: PostgreSQL sends one per tuple (the first also
 * carries the 19-byte header, the trailer comes alone); a tuple split between two writes is
 * kept until its end arrives. */
static PyObject *Decoder_write(Decoder *self, PyObject *chunk) {
    if (self->write_rows == NULL) {
        PyErr_SetString(PyExc_TypeError, "Decoder.__init__ was not called");
        return NULL;
    }
    if (self->writing) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder.write() called again from its hand_back");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    self->writing = 1;
    const unsigned char *data = view.buf;
    Py_ssize_t length = view.len, done;
    if (self->pending_length == 0) {
        done = read_stream(self, data, length);
        if (done >= 0 && done < length && keep_pending(self, data + done, length - done) < 0)
            done = -1;
    } else if (length > PY_SSIZE_T_MAX - self->pending_length) {
        PyErr_NoMemory();
        done = -1;
    } else {
        Py_ssize_t total = self->pending_length + length;
        done = 0;
        if (total > self->pending_capacity) {
            unsigned char *pending = realloc(self->pending, total);
            if (pending == NULL) {
                PyErr_NoMemory();
                done = -1;
            } else {
                self->pending = pending;
                self->pending_capacity = total;
            }
        }
        if (done == 0) {
            memcpy(self->pending + self->pending_length, data, length);
            self->pending_length = total;
            done = read_stream(self, self->pending, total);
            if (done >= 0)
                (void)keep_pending(self, self->pending + done, total - done); /* within capacity */
        }
    }
    PyBuffer_Release(&view);
    self->writing = 0;
    if (done < 0)
        return NULL;
    return PyLong_FromSsize_t(length);
}

/* finish(): the stream ended (copy_expert returned): it must have ended with the trailer, with
 * nothing left over; the rows still buffered are written. */
static PyObject *Decoder_finish(Decoder *self, PyObject *unused) {
    if (self->copy_state != COPY_ENDED) {
        framing_error(self->copy_state == COPY_HEADER ? "no header" : "no trailer",
                      (long long)self->pending_length);
        return NULL;
    }
    if (self->pending_length) {
        framing_error("bytes after the trailer", (long long)self->pending_length);
        return NULL;
    }
    if (flush(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* --- images ------------------------------------------------------------------------------- */

static void clear_image(Image *image) {
    free(image->field_of_column);
    free(image->kind_of_column);
    if (image->defaults != NULL)
        for (int i = 0; i < image->fields; i++)
            free(image->defaults[i].bytes);
    free(image->defaults);
    memset(image, 0, sizeof(Image));
}

static int long_attribute(PyObject *object, const char *name, int *value) {
    PyObject *attribute = PyObject_GetAttrString(object, name);
    if (attribute == NULL)
        return -1;
    long number = PyLong_AsLong(attribute);
    Py_DECREF(attribute);
    if (number == -1 && PyErr_Occurred())
        return -1;
    *value = (int)number;
    return 0;
}

/* Reads an ActionImages (plan, columns, template, id_field, toastable_field) into image. */
static int read_image(PyObject *source, Image *image) {
    PyObject *plan = NULL, *template = NULL;
    if (long_attribute(source, "columns", &image->columns) < 0 ||
        long_attribute(source, "id_field", &image->id_field) < 0 ||
        long_attribute(source, "toastable_field", &image->toastable_field) < 0)
        goto fail;
    plan = PyObject_GetAttrString(source, "plan");
    template = plan ? PyObject_GetAttrString(source, "template") : NULL;
    if (template == NULL)
        goto fail;
    if (!PyTuple_Check(plan) || PyTuple_GET_SIZE(plan) != image->columns || !PyList_Check(template)) {
        PyErr_SetString(PyExc_TypeError, "an ActionImages: plan a tuple of (field, kind), template a list");
        goto fail;
    }
    image->fields = (int)PyList_GET_SIZE(template);
    image->field_of_column = calloc(image->columns + 1, sizeof(int));
    image->kind_of_column = calloc(image->columns + 1, sizeof(int));
    image->defaults = calloc(image->fields + 1, sizeof(Text));
    if (!image->field_of_column || !image->kind_of_column || !image->defaults) {
        PyErr_NoMemory();
        goto fail;
    }
    for (int i = 0; i < image->fields; i++) {
        char *bytes;
        Py_ssize_t length;
        if (PyBytes_AsStringAndSize(PyList_GET_ITEM(template, i), &bytes, &length) < 0)
            goto fail;
        image->defaults[i].bytes = malloc(length + 1);
        if (image->defaults[i].bytes == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        memcpy(image->defaults[i].bytes, bytes, length);
        image->defaults[i].length = length;
    }
    for (int column = 0; column < image->columns; column++) {
        int field, kind;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(plan, column), "ii", &field, &kind))
            goto fail;
        if (field < 0 || field >= image->fields || kind < KIND_RAW || kind > KIND_NAIVE_TIME ||
            (kind == KIND_FLAGGED_TEXT && field + 1 >= image->fields)) {
            PyErr_SetString(PyExc_ValueError, "an ActionImages plan out of range");
            goto fail;
        }
        image->field_of_column[column] = field;
        image->kind_of_column[column] = kind;
    }
    if (image->id_field < 0 || image->id_field >= image->fields || image->toastable_field < 0 ||
        image->toastable_field + 1 >= image->fields) {
        PyErr_SetString(PyExc_ValueError, "an ActionImages id or TOAST field out of range");
        goto fail;
    }
    Py_DECREF(plan);
    Py_DECREF(template);
    return 0;
fail:
    Py_XDECREF(plan);
    Py_XDECREF(template);
    clear_image(image);
    return -1;
}

static void forget_image(Decoder *self, uint32_t oid) {
    Image *image = find_image(self, oid);
    if (image == NULL)
        return;
    clear_image(image);
    *image = self->images[--self->image_count];
}

/* set_image(oid, images): the changes of relation `oid` are action's, read through images (an
 * ActionImages); any other object (a RefusedRelation) makes them handed back. */
static PyObject *Decoder_set_image(Decoder *self, PyObject *args) {
    unsigned int oid;
    PyObject *source;
    if (!PyArg_ParseTuple(args, "IO", &oid, &source))
        return NULL;
    Image image;
    memset(&image, 0, sizeof(Image));
    image.oid = oid;
    PyObject *plan = PyObject_GetAttrString(source, "plan");
    if (plan == NULL) {
        PyErr_Clear(); /* a RefusedRelation raises its error for any attribute */
        image.refused = 1;
    } else {
        Py_DECREF(plan);
        image.oid = oid;
        if (read_image(source, &image) < 0)
            return NULL;
        image.oid = oid;
    }
    forget_image(self, oid);
    Image *images = realloc(self->images, (self->image_count + 1) * sizeof(Image));
    if (images == NULL) {
        clear_image(&image);
        return PyErr_NoMemory();
    }
    self->images = images;
    self->images[self->image_count++] = image;
    Py_RETURN_NONE;
}

static PyObject *Decoder_forget(Decoder *self, PyObject *args) {
    unsigned int oid;
    if (!PyArg_ParseTuple(args, "I", &oid))
        return NULL;
    forget_image(self, oid);
    Py_RETURN_NONE;
}

/* --- the type ------------------------------------------------------------------------------ */

static int Decoder_init(Decoder *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"applied_lsn", "upto_lsn", "next_xid", "write_rows", "hand_back", "flush_bytes", NULL};
    unsigned long long applied, upto, next_xid;
    PyObject *write_rows, *hand_back;
    Py_ssize_t flush_bytes = FLUSH_BYTES;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "KKKOO|n", names, &applied, &upto, &next_xid, &write_rows,
                                     &hand_back, &flush_bytes))
        return -1;
    if (flush_bytes < 1 || flush_bytes > FLUSH_BYTES)
        flush_bytes = FLUSH_BYTES;
    self->flush_bytes = flush_bytes;
    if (PyErr_Occurred())
        return -1;
    self->applied_lsn = applied;
    self->upto_lsn = upto;
    self->next_xid = next_xid;
    Py_XSETREF(self->write_rows, Py_NewRef(write_rows));
    Py_XSETREF(self->hand_back, Py_NewRef(hand_back));
    self->copy_state = COPY_HEADER;
    self->pending_length = 0;
    return 0;
}

/* hand_back is usually a closure over the decoder itself: a cycle the garbage collector breaks. */
static int Decoder_traverse(Decoder *self, visitproc visit, void *arg) {
    Py_VISIT(self->write_rows);
    Py_VISIT(self->hand_back);
    return 0;
}

static int Decoder_clear(Decoder *self) {
    Py_CLEAR(self->write_rows);
    Py_CLEAR(self->hand_back);
    return 0;
}

static void Decoder_dealloc(Decoder *self) {
    PyObject_GC_UnTrack(self);
    Decoder_clear(self);
    free(self->pending);
    for (int i = 0; i < self->image_count; i++)
        clear_image(&self->images[i]);
    free(self->images);
    free(self->out);
    for (Py_ssize_t i = 0; i < self->block_capacity; i++)
        free(self->blocks[i].bits);
    free(self->blocks);
    free(self->new_fields);
    free(self->old_fields);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Decoder_get_final_lsn(Decoder *self, void *closure) {
    if (!self->has_begin)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(self->final_lsn);
}

static PyObject *Decoder_get_in_window(Decoder *self, void *closure) { return PyBool_FromLong(self->in_window); }

static PyMethodDef Decoder_methods[] = {
    {"write", (PyCFunction)Decoder_write, METH_O,
     "write(chunk): the next bytes of `COPY (peek) TO STDOUT (FORMAT binary)` (copy_expert's file)"},
    {"finish", (PyCFunction)Decoder_finish, METH_NOARGS, "finish(): the COPY ended; writes the rows left"},
    {"set_image", (PyCFunction)Decoder_set_image, METH_VARARGS,
     "set_image(oid, images): relation oid is action, read through an ActionImages"},
    {"forget", (PyCFunction)Decoder_forget, METH_VARARGS, "forget(oid): relation oid is not action"},
    {NULL},
};

#define COUNTER(name) {#name, T_LONGLONG, offsetof(Decoder, name), READONLY, NULL}
#include <structmember.h>
static PyMemberDef Decoder_members[] = {
    COUNTER(inserts), COUNTER(updates), COUNTER(deletes), COUNTER(transactions),
    COUNTER(skipped), COUNTER(written), COUNTER(seq), COUNTER(touched), {NULL},
};

static PyGetSetDef Decoder_getset[] = {
    {"in_window", (getter)Decoder_get_in_window, NULL, "the transaction in progress is in the window", NULL},
    {"final_lsn", (getter)Decoder_get_final_lsn, NULL, "its commit LSN (None before a Begin)", NULL},
    {NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tracking_sync.capture._decode.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)Decoder_traverse,
    .tp_clear = (inquiry)Decoder_clear,
    .tp_free = PyObject_GC_Del,
    .tp_doc = "The compiled decoder of a capture batch (tracking_sync.capture.decoding.PythonDecoder's twin).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_methods = Decoder_methods,
    .tp_members = Decoder_members,
    .tp_getset = Decoder_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_decode", "pgoutput messages of action into CSV change rows, compiled.", -1, NULL,
};

PyMODINIT_FUNC PyInit__decode(void) {
    if (PyType_Ready(&DecoderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
