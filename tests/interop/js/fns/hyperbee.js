// The block codecs of hyperbee/lib/messages.js, for tests/interop/test_hyperbee_interop.py.
// Messages travel as plain objects: byte fields as Buffers, absent ones as null.
'use strict'

const { Header, Node, YoloIndex } = require('hyperbee/lib/messages')

const codecs = { header: Header, node: Node, yolo: YoloIndex }

module.exports = {
  'bee.encode': (kind, msg) => codecs[kind].encode(msg),
  'bee.decode': (kind, buf) => {
    try {
      return { value: codecs[kind].decode(buf) }
    } catch (err) {
      return { error: String(err.message || err) }
    }
  }
}
