; Lua tags. Based on tree-sitter-lua's queries/tags.scm (MIT), with require() imports added
; for swarm-lsp.

(function_declaration
  name: (method_index_expression method: (identifier) @name.definition.method)) @definition.method

(function_declaration
  name: [
    (identifier) @name.definition.function
    (dot_index_expression field: (identifier) @name.definition.function)
  ]) @definition.function

(assignment_statement
  (variable_list
    .
    name: [
      (identifier) @name.definition.function
      (dot_index_expression field: (identifier) @name.definition.function)
    ])
  (expression_list . value: (function_definition))) @definition.function

(table_constructor
  (field
    name: (identifier) @name.definition.function
    value: (function_definition)) @definition.function)

(function_call
  name: (identifier) @_require
  arguments: [
    (arguments . (string content: (string_content) @name.import.module))
    (string content: (string_content) @name.import.module)
  ]
  (#eq? @_require "require")) @import

(function_call
  name: [
    (identifier) @name.reference.call
    (dot_index_expression field: (identifier) @name.reference.call)
    (method_index_expression method: (identifier) @name.reference.call)
  ]
  (#not-eq? @name.reference.call "require")) @reference.call
