; Go tags. Based on tree-sitter-go's queries/tags.scm (MIT), without its doc-comment
; predicates; struct/interface kinds, constants and import captures added for swarm-lsp.

(function_declaration
  name: (identifier) @name.definition.function) @definition.function

(method_declaration
  name: (field_identifier) @name.definition.method) @definition.method

(type_declaration
  (type_spec name: (type_identifier) @name.definition.interface type: (interface_type)) @definition.interface)

(type_declaration
  (type_spec name: (type_identifier) @name.definition.class type: (struct_type)) @definition.class)

(type_declaration
  (type_spec name: (type_identifier) @name.definition.type) @definition.type)

(method_elem
  name: (field_identifier) @name.definition.method) @definition.method

(source_file
  (const_declaration (const_spec name: (identifier) @name.definition.constant) @definition.constant))

(source_file
  (var_declaration (var_spec name: (identifier) @name.definition.variable) @definition.variable))

(call_expression
  function: [
    (identifier) @name.reference.call
    (parenthesized_expression (identifier) @name.reference.call)
    (selector_expression field: (field_identifier) @name.reference.call)
    (parenthesized_expression (selector_expression field: (field_identifier) @name.reference.call))
  ]) @reference.call

((type_identifier) @name.reference.type) @reference.type

(import_spec
  path: (interpreted_string_literal (interpreted_string_literal_content) @name.import.module)) @import

(import_spec
  name: (package_identifier) @name.import.name) @import
