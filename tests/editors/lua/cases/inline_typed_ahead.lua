-- The 0.11 inline fallback's pure parts: typing the start of a suggestion keeps the rest.
return function(H, _args)
  local inline = require('swarm_lsp.inline')
  local s = { row = 3, col = 4, text = 'area(radius)' }
  local function show(r)
    return r and { r.row, r.col, r.text } or vim.NIL
  end
  H.record('typed_two', show(inline.advance(s, 3, 6, '    ar')))
  H.record('typed_other', show(inline.advance(s, 3, 6, '    xy')))
  H.record('typed_all', show(inline.advance(s, 3, 16, '    area(radius)')))
  H.record('other_row', show(inline.advance(s, 4, 6, '    ar')))
  H.record('moved_back', show(inline.advance(s, 3, 3, '   ')))
  H.record('debounce_ms', require('swarm_lsp.config').defaults.inline.debounce_ms)
end
