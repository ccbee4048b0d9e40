; Java tags. Based on tree-sitter-java's queries/tags.scm (MIT); enums, records,
; constructors, type references and imports added for swarm-lsp.

(class_declaration name: (identifier) @name.definition.class) @definition.class

(record_declaration name: (identifier) @name.definition.class) @definition.class

(enum_declaration name: (identifier) @name.definition.enum) @definition.enum

(interface_declaration name: (identifier) @name.definition.interface) @definition.interface

(method_declaration name: (identifier) @name.definition.method) @definition.method

(constructor_declaration name: (identifier) @name.definition.constructor) @definition.constructor

(method_invocation name: (identifier) @name.reference.call) @reference.call

(object_creation_expression type: (type_identifier) @name.reference.class) @reference.class

(superclass (type_identifier) @name.reference.class) @reference.class

(type_list (type_identifier) @name.reference.implementation) @reference.implementation

((type_identifier) @name.reference.type) @reference.type

(import_declaration (scoped_identifier name: (identifier) @name.import.name)) @import

(import_declaration (scoped_identifier scope: (_) @name.import.module)) @import
